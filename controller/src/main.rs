use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    lakeops::cli::Cli::parse().run()
}
