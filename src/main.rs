//! berth's entry point: parse runc's command line, set up logging, dispatch, and turn the
//! outcome into an exit code and one error line.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    // Before berth opens a file of its own, which would take the first free number.
    if let Err(e) = berth::container::check_preserved_fds(args.fds_to_preserve()) {
        eprintln!("berth: {e}");
        std::process::exit(1);
    }
    if let Err(e) = args.global.init_logging() {
        eprintln!("berth: open log file: {e}");
        std::process::exit(1);
    }
    let code = match cli::dispatch(&args) {
        Ok(code) => code,
        Err(failure) => {
            berth::logging::error(&failure.message);
            failure.code
        }
    };
    std::process::exit(code);
}
