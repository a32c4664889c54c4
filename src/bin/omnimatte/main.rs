//! `omnimatte`: the command-line tool of gst-omnimatte.

mod bench;
mod contact_sheet;
mod decompose;
mod eval;
mod labels;
mod layer_args;
mod media;
mod progress;
mod synth;
mod train;

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
    /// Decompose a video with its masks into per-object RGBA layers, background and
    /// reconstruction, optionally after test-time training on it.
    Decompose(decompose::DecomposeArgs),
    /// Score decompositions of videos with ground truth (effect IoU, PSNR) against the mask-only baseline.
    Eval(eval::EvalArgs),
    /// Write masks (palette, 16-bit, binary or per-object PNGs) as the 8-bit gray label maps
    /// the element's mask pad takes.
    Labels(labels::LabelsArgs),
    /// Write synthetic scenes with ground truth in the Omnimatte folder layout.
    Synth(synth::SynthArgs),
    /// Pretrain the network on synthetic scenes generated on the fly.
    Train(train::TrainArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Decompose(args) => decompose::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Labels(args) => labels::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Train(args) => train::run(args),
    };
    if let Err(e) = result {
        eprintln!("omnimatte: {e:#}");
        std::process::exit(1);
    }
}
