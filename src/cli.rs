//! Command-line definitions (clap).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// drover: reverse proxy, load balancer, health checker and autoscaler in one binary.
#[derive(Debug, Parser)]
#[command(name = "drover", version, about)]
pub struct Cli {
    /// Log format (default: pretty on a terminal, json otherwise).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (-q warnings and errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (default command). Without -c: ./drover.toml, else the built-in demo.
    Run {
        /// Config file.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Worker threads (default: server.threads, else one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Validate a config file: prints "ok" and one line per pool, or every error. Exit 0 valid, 2 invalid.
    Check {
        /// Config file.
        #[arg(short, long, default_value = "drover.toml")]
        config: PathBuf,
    },
    /// Write a commented starter config (refuses to overwrite).
    Init {
        /// File to write.
        #[arg(default_value = "drover.toml")]
        file: PathBuf,
    },
    /// The built-in demo/test backend.
    Backend {
        /// Address to listen on (default 127.0.0.1:$PORT).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Name shown in responses (default $HOSTNAME or the listen address).
        #[arg(long)]
        name: Option<String>,
    },
    /// Internal: runs a managed instance and stops it when drover goes away.
    #[command(name = "__supervise", hide = true)]
    Supervise {
        /// The instance's command and arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        argv: Vec<String>,
    },
}
