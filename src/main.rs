use clap::Parser;
use ftlua::cli::{self, Cli, Command};
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Cli::parse();
    // The other processes of a data-parallel run leave the progress reports to rank 0.
    let follower = ftlua::dist::launch_ranks().0 != 0;
    let level = match (args.quiet || follower, args.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FTLUA_LOG").unwrap_or_else(|_| level.into()))
        .with_target(false)
        .without_time()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(ftlua::train::progress::LogWriter::new)
        .init();
    let result = match args.command {
        Command::Run(run) => cli::run(run),
        Command::Predict(args) => cli::predict(args),
        Command::Eval(args) => cli::eval(args),
        Command::Report(args) => cli::report(args),
        Command::Doc(args) => cli::doc(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
