//! Files generated from the command line's own definition: shell completions and the man page.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;
use super::commands::Exit;

/// `completions SHELL`: the completion script for `shell`, to stdout.
pub(super) fn completions(shell: Shell) -> Exit {
    let mut cli = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli, "jwk-rotator", &mut script);
    write_out(&script)
}

/// `man`: the man page in roff, to stdout (`jwk-rotator man > jwk-rotator.1`).
pub(super) fn man_page() -> Exit {
    let mut page = Vec::new();
    match clap_mangen::Man::new(Cli::command()).render(&mut page) {
        Ok(()) => write_out(&page),
        Err(e) => {
            eprintln!("error: cannot render the man page: {e}");
            Exit::FAILED
        }
    }
}

fn write_out(bytes: &[u8]) -> Exit {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Exit::OK,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            Exit::FAILED
        }
    }
}
