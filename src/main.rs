#![forbid(unsafe_code)]
//! The `drover` binary: parse the command line, set up logging, run, map errors to exit codes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use drover::app::{self, ConfigSource, RunError, RunOptions};
use drover::cli::{Cli, Command, LogFormat};
use drover::config;
use tracing_subscriber::EnvFilter;

fn init_logging(cli: &Cli) {
    let level = match (cli.verbose, cli.quiet) {
        (_, q) if q > 0 => "warn",
        (0, _) => "info",
        (1, _) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("DROVER_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let json = match cli.log_format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Pretty) => false,
        None => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // The access log (stdout) follows the same choice, judged by stdout's terminal.
    let access_text = match cli.log_format {
        Some(f) => f == LogFormat::Pretty,
        None => std::io::stdout().is_terminal(),
    };
    drover::access_log::set_text(access_text);
    drover::instances::output::set_json(json);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.compact().init();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(code) = before_logging(cli.command.as_ref()) {
        return code;
    }
    init_logging(&cli);
    // Panics are logged as events; one in a request ends only that request.
    drover::proxy::isolate::install_hook();
    let command = cli.command.unwrap_or(Command::Run {
        config: None,
        threads: 0,
        watch: false,
    });
    match command {
        Command::Ctl(args) => match runtime().block_on(drover::ctl::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failed("drover ctl", e),
        },
        Command::Run {
            config,
            threads,
            watch,
        } => run(config, threads, watch),
        Command::Check { config } => check(&config),
        Command::Init { file } => init(&file),
        Command::Supervise { .. }
        | Command::ExecChild { .. }
        | Command::Schema
        | Command::Completions { .. }
        | Command::Man => {
            unreachable!("handled before logging is set up")
        }
        Command::Backend {
            listen,
            name,
            tls,
            warmup,
        } => {
            let warm_up = std::time::Duration::from_millis(warmup);
            match runtime().block_on(drover::backend_app::run(listen, name, tls, warm_up)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => failed("drover backend", format!("{e:#}")),
            }
        }
    }
}

/// Prints `what: e` and exits 1.
fn failed(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("{what}: {e}");
    ExitCode::from(1)
}

/// The commands that run without logging (instance supervisors, printing the
/// schema, completions or man page): their exit code, else `None`.
fn before_logging(command: Option<&Command>) -> Option<ExitCode> {
    match command? {
        Command::Supervise { parent, argv } => {
            Some(drover::instances::supervise::run(*parent, argv))
        }
        Command::ExecChild { parent, argv } => {
            Some(drover::instances::supervise::exec_child(*parent, argv))
        }
        Command::Schema => {
            let schema = config::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema).expect("JSON"));
            Some(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut cmd = drover::cli::public_command();
            clap_complete::generate(*shell, &mut cmd, "drover", &mut std::io::stdout());
            Some(ExitCode::SUCCESS)
        }
        Command::Man => Some(match drover::cli::write_man(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failed("drover man", e),
        }),
        _ => None,
    }
}

/// `drover run`: the given file, else `./drover.toml`, else the built-in demo.
fn run(config: Option<PathBuf>, threads: usize, watch: bool) -> ExitCode {
    let source = match config {
        Some(path) => ConfigSource::File(path),
        None if PathBuf::from("drover.toml").exists() => {
            ConfigSource::File(PathBuf::from("drover.toml"))
        }
        None => ConfigSource::Demo,
    };
    let rt = runtime();
    let result = rt.block_on(app::run(RunOptions {
        source,
        threads,
        watch,
    }));
    // Do not wait for a shutdown cut short by a second signal.
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Config(e)) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(RunError::Runtime(e)) => failed("drover", format!("{e:#}")),
    }
}

/// `drover check`: warnings and a summary (exit 0), or every error (exit 2).
fn check(path: &Path) -> ExitCode {
    match config::load_file(path) {
        Ok(cfg) => {
            for w in config::warnings(&cfg) {
                eprintln!("warning: {w}");
            }
            println!("ok");
            for line in config::summary_lines(&cfg) {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{} error(s) in {}", e.errors.len(), path.display());
            ExitCode::from(2)
        }
    }
}

/// `drover init`: writes the starter config to a new file (never overwrites: exit 2).
fn init(file: &Path) -> ExitCode {
    use std::io::Write;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file);
    match created {
        Ok(mut f) => match f.write_all(config::STARTER_CONFIG.as_bytes()) {
            Ok(()) => {
                println!("wrote {}; check it with `drover check -c {0}`, run it with `drover run -c {0}`", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => failed("drover", format!("cannot write {}: {e}", file.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "drover: {} already exists; not overwriting it (remove it or name another file)",
                file.display()
            );
            ExitCode::from(2)
        }
        Err(e) => failed("drover", format!("cannot create {}: {e}", file.display())),
    }
}
