//! The command line (clap derive). Every argument's doc comment is its `--help` text.

use crate::duration::parse_duration;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use common::control::SOCKET_ENV;
use common::types::Role;
use std::path::PathBuf;
use std::time::Duration;

const AFTER_HELP: &str = "\
Examples:
  quorumctl status                  this node, the master, the quorum and the members
  quorumctl role                    one word: starting, master, slave, inquorate, dispatching
  quorumctl is-master && promote    run something only on the master
  quorumctl --json status | jq .master
  quorumctl wait master --timeout 10s
  quorumctl follow                  role and membership changes as they happen
  sudo quorumctl dispatch           leave the cluster gracefully (hand over, run hook, exit)
  quorumctl completions zsh > _quorumctl
  quorumctl manpage --out-dir /usr/local/share/man/man1

Exit codes:
  0  success
  1  negative answer (is-master: not master; wait: timed out)
  2  usage error
  3  quorumd unreachable (not running, wrong --socket, went away)
  4  quorumd refused the request (permission, unknown member, shutting down...), or this
     user may not open its socket (join the socket's group)";

/// Ask the local quorumd about the cluster, or tell it to change something.
#[derive(Debug, Parser)]
#[command(name = "quorumctl", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Control socket of quorumd [default: /run/quorumd/quorumd.sock; if that does not exist
    /// and you are not root: $XDG_RUNTIME_DIR/quorumd/quorumd.sock, then
    /// /tmp/quorumd-<uid>/quorumd.sock]
    #[arg(long, global = true, env = SOCKET_ENV, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Print JSON for scripts: one document, or one line per event for `follow`
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show this node, its role, the master, epoch, quorum and the members table
    Status,
    /// Print this node's role as one word (starting, master, slave, inquorate, dispatching)
    Role,
    /// Exit 0 if this node is master, 1 if it is not; prints nothing
    IsMaster,
    /// Print the members table (name, address, port, state, role, counted, last heard)
    Members,
    /// Rename this node; peers see the new name, its rank does not change (needs privilege)
    Rename {
        /// The new name: unique in the cluster, up to 255 printable characters of any script,
        /// no whitespace
        #[arg(value_parser = parse_name)]
        new: String,
    },
    /// Leave the cluster gracefully: hand over mastership, run the hook, exit (needs privilege)
    Dispatch,
    /// Print role, master and membership changes as they happen, one per line
    Follow,
    /// Wait until this node has ROLE; exit 1 if --timeout passes first
    Wait {
        /// The role to wait for
        #[arg(value_parser = role_parser())]
        role: Role,
        /// Give up after this long: 10s, 500ms, 2m, 1h, 1.5s, or a number of seconds
        /// [default: wait forever]
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
    /// Remove a lost member from the quorum count (an operator's decision; needs privilege)
    Forget {
        /// The lost member's name
        name: String,
    },
    /// Hand mastership over now and stay a voter; eligible again after --for, or at `resume`
    /// (needs privilege)
    StepDown {
        /// How long to stay ineligible: 10s, 5m, 1h [default: until `quorumctl resume`]
        #[arg(long = "for", value_name = "DUR", value_parser = parse_duration)]
        for_: Option<Duration>,
    },
    /// End a step-down: this node may become master again (needs privilege)
    Resume,
    /// Maintenance on: never master, still counted and voting; off: eligible again (needs
    /// privilege)
    Maintenance {
        /// on or off
        #[arg(value_parser = parse_on_off, action = clap::ArgAction::Set)]
        state: bool,
    },
    /// Print the daemon's metrics in the Prometheus text format
    Metrics,
    /// Write a new cluster key file (mode 0600, never overwriting a file) for --key-file; without
    /// PATH print it (same format as `quorumd --generate-key`)
    Keygen {
        /// Where to write the key file, e.g. /etc/quorumd/cluster.key
        path: Option<PathBuf>,
    },
    /// Print the shell completion script for quorumctl (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Write the man pages (quorumd.1, quorumctl.1, one per subcommand) into DIR
    Manpage {
        /// Directory to write the pages to (created if missing)
        #[arg(long, value_name = "DIR", required = true)]
        out_dir: PathBuf,
    },
}

/// `on` or `off`.
fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, got {s:?}")),
    }
}

/// A name, checked by the rule the daemon applies to every name (`common::types::check_name`).
fn parse_name(s: &str) -> Result<String, String> {
    common::types::check_name(s).map(|()| s.to_string())
}

/// Roles as completable, validated words.
fn role_parser() -> impl TypedValueParser<Value = Role> {
    PossibleValuesParser::new(Role::ALL.map(Role::as_str)).try_map(|s| s.parse::<Role>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_work_before_and_after_the_subcommand() {
        for args in [
            ["quorumctl", "--json", "--socket", "/x", "role"],
            ["quorumctl", "role", "--json", "--socket", "/x"],
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            assert!(cli.json);
            assert_eq!(cli.socket, Some(PathBuf::from("/x")));
        }
    }

    #[test]
    fn wait_takes_a_role_and_a_systemd_duration() {
        let cli = Cli::try_parse_from(["quorumctl", "wait", "master", "--timeout", "1.5s"])
            .expect("parses");
        match cli.command {
            Command::Wait { role, timeout } => {
                assert_eq!(role, Role::Master);
                assert_eq!(timeout, Some(Duration::from_millis(1500)));
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["quorumctl", "wait", "king"]).is_err());
        assert!(Cli::try_parse_from(["quorumctl", "wait", "master", "--timeout", "soon"]).is_err());
    }
}
