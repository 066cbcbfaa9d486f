//! quorumctl: the command-line client of quorumd.
//!
//! # Layout
//!
//! - `cli`: the clap definition (global `--socket`, `--json`, subcommands).
//! - `client`: the Unix-socket connection (crate `interprocess`) and socket discovery.
//! - `commands`: one function per subcommand.
//! - `output`: human formatting (status block, members table, follow lines).
//! - `duration`: systemd-style durations for `wait --timeout`.
//! - `exit`: failures and their exit codes (0 ok, 1 negative, 2 usage, 3 unreachable,
//!   4 refused).

mod cli;
mod client;
mod commands;
mod duration;
mod exit;
mod output;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};
use client::Client;
use common::control::Request;
use exit::Failure;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    // Packaging helpers need no daemon.
    match cli.command {
        Command::Completions { shell } => {
            // Into a buffer first: clap_complete panics when its writer fails (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "quorumctl", &mut script);
            return commands::print(&String::from_utf8_lossy(&script));
        }
        Command::Keygen { path: Some(path) } => {
            // Refused (the file exists, no directory, ...): exit 1 with the reason.
            quorumd::keyfile::generate(&path)
                .map_err(|e| Failure::Negative(Some(format!("{e:#}"))))?;
            return commands::print(&format!(
                "wrote a new cluster key to {} (mode 0600)\n",
                path.display()
            ));
        }
        Command::Keygen { path: None } => {
            let text = quorumd::keyfile::new_key_file()
                .map_err(|e| Failure::Negative(Some(format!("{e:#}"))))?;
            return commands::print(&text);
        }
        Command::Manpage { out_dir } => {
            std::fs::create_dir_all(&out_dir)?;
            clap_mangen::generate_to(Cli::command(), &out_dir)?;
            clap_mangen::generate_to(quorumd::config::command(), &out_dir)?;
            return Ok(());
        }
        _ => {}
    }
    let path = client::resolve_socket(cli.socket);
    let mut client = Client::connect(&path).await?;
    let client = &mut client;
    match cli.command {
        Command::Status => commands::status(client, json).await,
        Command::Role => commands::role(client, json).await,
        Command::IsMaster => commands::is_master(client).await,
        Command::Members => commands::members(client, json).await,
        Command::Rename { new } => commands::rename(client, new, json).await,
        Command::Dispatch => commands::dispatch(client, json).await,
        Command::Follow => commands::follow(client, json).await,
        Command::Wait { role, timeout } => commands::wait(client, role, timeout).await,
        Command::Forget { name } => commands::forget(client, name, json).await,
        Command::StepDown { for_ } => {
            let for_ms = for_.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            commands::hold(client, Request::StepDown { for_ms }, json).await
        }
        Command::Metrics => commands::metrics(client).await,
        Command::Resume => commands::hold(client, Request::Resume, json).await,
        Command::Maintenance { state } => {
            commands::hold(client, Request::Maintenance { on: state }, json).await
        }
        Command::Completions { .. } | Command::Manpage { .. } | Command::Keygen { .. } => Ok(()),
    }
}
