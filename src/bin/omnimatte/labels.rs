//! `omnimatte labels`: masks stored any way `decompose` reads them, written as the 8-bit gray
//! label maps the element's `mask` pad takes (GStreamer's pngdec turns a palette PNG's indices
//! into colours, and a 16-bit or binary mask into other labels).

use gstomnimatte::dataset::write_png;
use gstomnimatte::label_maps::LabelMaps;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct LabelsArgs {
    /// The masks: a folder of label PNGs (8- or 16-bit gray, or a palette PNG's indices as in
    /// DAVIS), of one object's binary PNGs, or of per-object folders of binary PNGs.
    #[arg(long)]
    masks: PathBuf,
    /// Output folder: 00000.png, 00001.png, ... (8-bit gray, 0 = background, k = object k).
    #[arg(long)]
    out: PathBuf,
    /// Number of objects; default: the highest label in the masks (at most 32).
    #[arg(long)]
    objects: Option<usize>,
}

pub fn run(args: LabelsArgs) -> anyhow::Result<()> {
    // Held (a byte a pixel) up to 2 GiB, beyond in a file in the output folder.
    let labels = LabelMaps::read_folder(&args.masks, 2 << 30, &args.out, None)?;
    let objects = labels.object_count(args.objects)?;
    let frames = labels.len();
    for t in 0..frames {
        let map = labels.get(t)?.unsqueeze(0).to_kind(tch::Kind::Float) / 255.0;
        write_png(&args.out.join(format!("{t:05}.png")), &map)?;
    }
    println!(
        "{frames} label maps of {objects} object{}: {}",
        if objects == 1 { "" } else { "s" },
        args.out.display()
    );
    Ok(())
}
