//! Hook scripts for tests: a tiny `sh` script that appends its environment as one line to a
//! file, and the parsed lines.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A hook script and the file it appends to.
pub struct Hook {
    /// The executable script (pass it to `-m`, `-s` or `--notify`).
    pub script: PathBuf,
    /// The file it appends one line per run to.
    pub output: PathBuf,
}

/// One recorded hook run: the `QUORUM_*` environment it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRun {
    pub role: String,
    pub previous: String,
    pub master: String,
    pub epoch: u64,
    pub node: String,
    pub event: String,
}

impl Hook {
    /// Writes `<dir>/<label>.sh` recording each run to `<dir>/<label>.out`; with
    /// `hang_first`, the first run instead sleeps 1000 s (recording its pid in
    /// `<dir>/<label>.pid`) and later runs record as usual.
    pub fn write(dir: &Path, label: &str, hang_first: bool) -> Hook {
        let script = dir.join(format!("{label}.sh"));
        let output = dir.join(format!("{label}.out"));
        let marker = dir.join(format!("{label}.pid"));
        let hang = if hang_first {
            format!(
                "if [ ! -e '{m}' ]; then echo $$ > '{m}'; exec sleep 1000; fi\n",
                m = marker.display()
            )
        } else {
            String::new()
        };
        let body = format!(
            "#!/bin/sh\n{hang}echo \"$QUORUM_ROLE $QUORUM_PREVIOUS_ROLE ${{QUORUM_MASTER:--}} \
             $QUORUM_EPOCH $QUORUM_NODE $QUORUM_EVENT\" >> '{}'\n",
            output.display()
        );
        std::fs::write(&script, body).expect("writing a hook script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("chmod 755 a hook script");
        Hook { script, output }
    }

    /// The script path as a command-line argument.
    pub fn arg(&self) -> &str {
        self.script.to_str().expect("temp paths are UTF-8")
    }

    /// The pid the hanging first run recorded, if it ran.
    pub fn hung_pid(&self) -> Option<i32> {
        let marker = self.script.with_extension("pid");
        std::fs::read_to_string(marker).ok()?.trim().parse().ok()
    }

    /// The runs recorded so far, in order (malformed lines are kept out).
    pub fn runs(&self) -> Vec<HookRun> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        text.lines().filter_map(parse_run).collect()
    }
}

fn parse_run(line: &str) -> Option<HookRun> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 6 {
        return None;
    }
    Some(HookRun {
        role: f[0].to_owned(),
        previous: f[1].to_owned(),
        master: if f[2] == "-" {
            String::new()
        } else {
            f[2].to_owned()
        },
        epoch: f[3].parse().ok()?,
        node: f[4].to_owned(),
        event: f[5].to_owned(),
    })
}
