#![forbid(unsafe_code)]
//! The `drover` binary: parse the command line, set up logging, run, map errors to exit codes.

use std::io::IsTerminal;
use std::path::PathBuf;
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
    match &cli.command {
        Some(Command::Supervise { parent, argv }) => {
            return drover::instances::supervise::run(*parent, argv)
        }
        Some(Command::ExecChild { parent, argv }) => {
            return drover::instances::supervise::exec_child(*parent, argv)
        }
        _ => {}
    }
    match &cli.command {
        Some(Command::Schema) => {
            let schema = config::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema).expect("JSON"));
            return ExitCode::SUCCESS;
        }
        Some(Command::Completions { shell }) => {
            let mut cmd = drover::cli::public_command();
            clap_complete::generate(*shell, &mut cmd, "drover", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::Man) => {
            return match drover::cli::write_man(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("drover man: {e}");
                    ExitCode::from(1)
                }
            };
        }
        _ => {}
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
            Err(e) => {
                eprintln!("drover ctl: {e}");
                ExitCode::from(1)
            }
        },
        Command::Run {
            config,
            threads,
            watch,
        } => {
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
                Err(RunError::Runtime(e)) => {
                    eprintln!("drover: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Check { config: path } => match config::load_file(&path) {
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
        },
        Command::Init { file } => {
            use std::io::Write;
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)
            {
                Ok(mut f) => match f.write_all(config::STARTER_CONFIG.as_bytes()) {
                    Ok(()) => {
                        println!("wrote {}; check it with `drover check -c {0}`, run it with `drover run -c {0}`", file.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("drover: cannot write {}: {e}", file.display());
                        ExitCode::from(1)
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    eprintln!("drover: {} already exists; not overwriting it (remove it or name another file)", file.display());
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("drover: cannot create {}: {e}", file.display());
                    ExitCode::from(1)
                }
            }
        }
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
                Err(e) => {
                    eprintln!("drover backend: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
