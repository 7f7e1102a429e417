//! The built-in demo/test backend (`drover backend`).
