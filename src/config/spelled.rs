//! Config enums written once: each value next to its config spelling.
//!
//! [`spelled_enum!`] declares an enum from a list of `Variant = "spelling"`
//! and derives everything that used to be written beside it: the table the
//! reader parses with (`one_of(Enum::TABLE)`, whose error lists the
//! spellings), `as_str`, the spellings `drover schema` offers
//! (`Enum::names()`) and `Enum::ALL`.

/// Declares a config enum and its one spelling table.
///
/// ```ignore
/// spelled_enum! {
///     /// `on_shutdown = ...`
///     #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
///     pub enum OnShutdown {
///         #[default]
///         Stop = "stop",
///         Leave = "leave",
///     }
/// }
/// ```
macro_rules! spelled_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $spelling:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value with its config spelling, in the order the docs list them:
            /// what the reader accepts, and the list its error shows.
            pub const TABLE: &'static [(&'static str, $name)] = &[ $( ($spelling, $name::$variant), )+ ];

            /// Every value, in table order.
            pub const ALL: [$name; [$($spelling),+].len()] = [ $( $name::$variant, )+ ];

            /// The config spelling.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $( $name::$variant => $spelling, )+
                }
            }

            /// The spellings, in table order (`drover schema`'s enum, error messages).
            pub fn names() -> Vec<&'static str> {
                Self::TABLE.iter().map(|(n, _)| *n).collect()
            }

            /// `"one of a, b, c"`, for a required key's message.
            pub fn one_of() -> String {
                format!("one of {}", Self::names().join(", "))
            }
        }
    };
}

pub(crate) use spelled_enum;
