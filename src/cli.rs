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
        /// Reload when the config file changes (checked every second, debounced).
        #[arg(long)]
        watch: bool,
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
        #[command(flatten)]
        tls: crate::backend_app::BackendTls,
        /// Slow for this many milliseconds after start: requests one at a
        /// time, 20 ms more each (a cold application; default 0 = never).
        #[arg(
            long,
            env = "DROVER_BACKEND_WARMUP_MS",
            default_value_t = 0,
            value_name = "MS"
        )]
        warmup: u64,
    },
    /// Internal: runs a managed instance and stops it when drover goes away.
    #[command(name = "__supervise", hide = true)]
    Supervise {
        /// drover's pid (default: the parent process at start).
        #[arg(long)]
        parent: Option<i32>,
        /// The instance's command and arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        argv: Vec<String>,
    },
    /// Internal: execs an instance's command so that it dies with its supervisor.
    #[command(name = "__exec-child", hide = true)]
    ExecChild {
        /// The supervisor's pid.
        #[arg(long)]
        parent: i32,
        /// The instance's command and arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        argv: Vec<String>,
    },
    /// Print the JSON Schema of drover.toml (for Taplo / Even Better TOML: `#:schema ./drover.schema.json`).
    Schema,
    /// Print a shell completion script: `drover completions bash > /etc/bash_completion.d/drover`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `drover man > drover.1; man -l drover.1`.
    Man,
    /// Client of a running drover's admin API: status, pools, drain, add, remove, scale, events, reload.
    Ctl(CtlArgs),
}

/// `drover ctl [--admin URL] [--token T] [--json] SUBCOMMAND`
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// Admin API URL (or host:port).
    #[arg(
        long,
        global = true,
        env = "DROVER_ADMIN",
        default_value = "http://127.0.0.1:9090"
    )]
    pub admin: String,
    /// Bearer token when admin.token is set.
    #[arg(
        long,
        global = true,
        env = "DROVER_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum CtlCommand {
    /// Readiness and one line per pool.
    Status,
    /// Every pool with its members, state and counters.
    Pools,
    /// The routes in match order, with their rate limits and 429 counts.
    Routes,
    /// Stop sending new requests to a member (in-flight ones finish).
    Drain { pool: String, address: String },
    /// Add a static member to a pool (dropped again by a reload whose file does not list it).
    Add {
        pool: String,
        address: String,
        /// Weight for weighted balancing (>= 1).
        #[arg(long, default_value_t = 1)]
        weight: u32,
    },
    /// Drain a member, then remove it once nothing is in flight.
    Remove { pool: String, address: String },
    /// Set a managed pool's desired instance count.
    Scale { pool: String, instances: u32 },
    /// Explain a pool's autoscaler: inputs, forecast, schedule window, each
    /// rule's recommendation, what held it back, the last 20 decisions.
    Autoscale { pool: String },
    /// The event log (health, membership, scaling, reloads).
    Events {
        /// Keep printing new events (polls every second) until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Only events after this id.
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
    /// Reload the config file (an invalid file is refused with its errors).
    Reload,
    /// Containers of drovers that no longer run (their owner is claimed by no running
    /// drover on this machine); talks to the Docker engine, not to the admin API.
    Orphans {
        /// Remove them (stop and delete).
        #[arg(long)]
        remove: bool,
        /// Only this owner (a top-level `name`, or a config-path hash).
        #[arg(long)]
        owner: Option<String>,
    },
}

/// The command line as users see it: without the hidden internal
/// subcommands (for completion scripts).
pub fn public_command() -> clap::Command {
    use clap::CommandFactory;
    let full = Cli::command();
    clap::Command::new("drover")
        .about(full.get_about().cloned().unwrap_or_default())
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// Writes the man page (roff): `drover(1)` with every visible subcommand as
/// a section, so one page documents the whole command line.
pub fn write_man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_sub_section(out, sub, "drover")?;
    }
    man.render_version_section(out)?;
    Ok(())
}

/// One `.SH` section per subcommand (and nested ones): usage, about, arguments.
fn write_sub_section(
    out: &mut dyn std::io::Write,
    cmd: &clap::Command,
    parent: &str,
) -> std::io::Result<()> {
    let name = format!("{parent} {}", cmd.get_name());
    writeln!(out, ".SH \"{}\"", roff_escape(&name.to_uppercase()))?;
    let mut c = cmd.clone().bin_name(&name);
    let usage = c.render_usage().to_string();
    writeln!(
        out,
        ".PP\n{}",
        roff_escape(usage.trim_start_matches("Usage: "))
    )?;
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        writeln!(out, ".PP\n{}", roff_escape(&about.to_string()))?;
    }
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let mut names = Vec::new();
        if let Some(s) = arg.get_short() {
            names.push(format!("-{s}"));
        }
        if let Some(l) = arg.get_long() {
            names.push(format!("--{l}"));
        }
        if names.is_empty() {
            names.push(format!("<{}>", id.to_uppercase()));
        }
        writeln!(out, ".TP\n\\fB{}\\fR", roff_escape(&names.join(", ")))?;
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        writeln!(out, "{}", roff_escape(&help))?;
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_sub_section(out, sub, &name)?;
    }
    Ok(())
}

/// Text safe in a roff line: backslashes doubled, a leading `.`/`'` guarded, dashes escaped.
fn roff_escape(s: &str) -> String {
    let mut t = s.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        t.insert_str(0, "\\&");
    }
    t.replace("\n.", "\n\\&.").replace("\n'", "\n\\&'")
}
