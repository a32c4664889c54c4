//! `omnimatte`: the command-line tool of gst-omnimatte.

mod bench;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "omnimatte",
    version,
    about = "Object layers with their effects (Omnimatte by coordination games)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Frames per second of the element end to end, of the streaming core, and of the bare
    /// network work per frame, at several working sizes.
    Bench(bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(args),
    };
    if let Err(e) = result {
        eprintln!("omnimatte: {e:#}");
        std::process::exit(1);
    }
}
