//! Frames stored as datasets store them: a folder of JPEGs (DAVIS's JPEGImages) read beside
//! PNG masks, and a folder holding both kinds refused.

#[path = "common/cli.rs"]
mod cli;

use cli::{decompose_args, encode_png_sequence, fails_with, files_under, succeeds, tiny_scene};
use gstomnimatte::byte_stack::ByteStack;
use gstomnimatte::dataset::{read_frames, read_frames_8bit, read_video};
use gstomnimatte::frame_sequence::FrameSequence;
use gstomnimatte::synth::EffectKind;
use std::path::Path;

/// Encodes the PNG frames of `rgb` as JPEG files `00000.jpg ...` in `out` with GStreamer, in
/// `format` (Y444 for colour without chroma subsampling, GRAY8 for gray JPEGs).
fn encode_jpegs(rgb: &Path, out: &Path, frames: usize, format: &str) {
    std::fs::create_dir_all(out).unwrap();
    encode_png_sequence(
        &[
            &format!("location={}/%05d.png", rgb.display()),
            &format!("stop-index={}", frames - 1),
        ],
        &[
            &format!("video/x-raw,format={format}"),
            "!",
            "jpegenc",
            "quality=95",
            "!",
            "multifilesink",
            &format!("location={}/%05d.jpg", out.display()),
        ],
        "encoding the JPEG frames failed",
    );
}

#[test]
fn a_folder_of_jpeg_frames_decomposes_with_its_masks() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("video");
    tiny_scene(&video, 6, EffectKind::Both, 5);
    let jpegs = dir.path().join("jpegs");
    encode_jpegs(&video.join("rgb"), &jpegs, 6, "Y444");

    // The frames are the PNGs' to JPEG's loss, in RGB order (a channel swap would be far off).
    let from_jpeg = read_frames(&jpegs).unwrap();
    let from_png = read_video(&video).unwrap().frames;
    assert_eq!(from_jpeg.size(), from_png.size());
    let error = (&from_jpeg - &from_png)
        .abs()
        .mean(tch::Kind::Float)
        .double_value(&[]);
    let swapped = (from_jpeg.flip([1]) - &from_png)
        .abs()
        .mean(tch::Kind::Float)
        .double_value(&[]);
    assert!(
        error < 0.03 && error < swapped / 3.0,
        "mean difference {error}, {swapped} with red and blue swapped"
    );

    // Gray JPEGs come back as RGB with three equal channels.
    let gray = dir.path().join("gray");
    encode_jpegs(&video.join("rgb"), &gray, 2, "GRAY8");
    let from_gray = read_frames(&gray).unwrap();
    assert_eq!(from_gray.size(), [2, 3, 64, 64]);
    assert!(from_gray.get(0).get(0).equal(&from_gray.get(0).get(2)));
    let luma = from_png
        .narrow(0, 0, 2)
        .mean_dim(1, false, tch::Kind::Float);
    let error = (from_gray.select(1, 1) - luma)
        .abs()
        .mean(tch::Kind::Float)
        .double_value(&[]);
    assert!(error < 0.05, "gray JPEG against the frames' mean: {error}");

    let out = dir.path().join("out");
    let masks = video.join("mask");
    succeeds(&decompose_args(&jpegs, Some(&masks), &out));
    for layer in ["layer_01", "layer_02", "recon"] {
        assert_eq!(
            std::fs::read_dir(out.join(layer)).unwrap().count(),
            6,
            "{layer}"
        );
    }

    // A PNG among the JPEGs: which sequence is the video is not for the reader to guess.
    std::fs::copy(video.join("rgb/00000.png"), jpegs.join("00000.png")).unwrap();
    fails_with(
        &decompose_args(&jpegs, Some(&masks), &dir.path().join("unused")),
        "both PNG and JPEG frames (1 and 6)",
    );
}

/// Writes frames of one grey level each, `value(i)` / 255 for the i-th name, as `names` in `dir`.
fn write_levels(dir: &Path, names: &[String]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, name) in names.iter().enumerate() {
        let level = tch::Tensor::full(
            [3, 4, 4],
            (i + 1) as f64 / 255.0,
            (tch::Kind::Float, tch::Device::Cpu),
        );
        gstomnimatte::dataset::write_png(&dir.join(name), &level).unwrap();
    }
}

#[test]
fn frames_numbered_without_padding_go_in_the_numbers_order() {
    let dir = tempfile::tempdir().unwrap();
    // ffmpeg's frame_%d.png: frame_1 ... frame_12, where frame_10 sorts before frame_2 by name.
    for prefix in ["frame_", ""] {
        let folder = dir.path().join(format!("seq{prefix}"));
        let names: Vec<String> = (1..=12).map(|i| format!("{prefix}{i}.png")).collect();
        write_levels(&folder, &names);
        let frames = read_frames(&folder).unwrap();
        let levels: Vec<i64> = (0..12)
            .map(|t| {
                (frames.get(t).mean(tch::Kind::Float).double_value(&[]) * 255.0).round() as i64
            })
            .collect();
        assert_eq!(levels, (1..=12).collect::<Vec<_>>(), "prefix {prefix:?}");
    }

    // A gap, and one number written twice, are named.
    let gap = dir.path().join("gap");
    write_levels(
        &gap,
        &["f_1.png".into(), "f_2.png".into(), "f_4.png".into()],
    );
    let err = format!("{:#}", read_frames(&gap).unwrap_err());
    assert!(err.contains("frame 3 is missing"), "{err}");
    let twice = dir.path().join("twice");
    write_levels(&twice, &["1.png".into(), "01.png".into(), "2.png".into()]);
    let err = format!("{:#}", read_frames(&twice).unwrap_err());
    assert!(err.contains("01.png and 1.png are both frame 1"), "{err}");
}

#[test]
fn frames_are_read_as_their_bytes_and_a_frame_of_another_size_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("levels");
    let names: Vec<String> = (0..3).map(|i| format!("{i:05}.png")).collect();
    write_levels(&folder, &names);
    // The bytes as stored (what `decompose` holds), and the same as floats in [0, 1].
    let bytes = read_frames_8bit(&folder).unwrap();
    assert_eq!(bytes.kind(), tch::Kind::Uint8);
    assert_eq!(bytes.size(), [3, 3, 4, 4]);
    let levels: Vec<i64> = (0..3)
        .map(|t| bytes.get(t).max().int64_value(&[]))
        .collect();
    assert_eq!(levels, [1, 2, 3]);
    let floats = read_frames(&folder).unwrap();
    assert!((floats * 255.0)
        .round()
        .to_kind(tch::Kind::Uint8)
        .equal(&bytes));

    // A frame of another size is refused naming it and the first frame.
    gstomnimatte::dataset::write_png(
        &folder.join("00003.png"),
        &tch::Tensor::zeros([3, 4, 5], (tch::Kind::Float, tch::Device::Cpu)),
    )
    .unwrap();
    let err = format!("{:#}", read_frames_8bit(&folder).unwrap_err());
    assert!(
        err.contains("00003.png is 5x4 but") && err.contains("00000.png is 4x4"),
        "{err}"
    );
}

#[test]
fn a_clip_too_large_to_hold_is_read_from_its_files_with_the_same_layers() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("video");
    tiny_scene(&video, 6, EffectKind::Both, 9);
    let rgb = video.join("rgb");
    assert!(matches!(
        FrameSequence::open(&rgb, u64::MAX).unwrap(),
        FrameSequence::Decoded(ByteStack::Held(_))
    ));
    let files = FrameSequence::open(&rgb, 0).unwrap();
    assert!(matches!(files, FrameSequence::Files { .. }));
    assert_eq!((files.len(), files.height_width()), (6, (64, 64)));
    assert!(files
        .frame_8bit(5)
        .unwrap()
        .equal(&read_frames_8bit(&rgb).unwrap().get(5)));

    // Held, and read again from the files as needed (the background's two passes, the
    // layers, the contact sheet): the same outputs to the byte.
    let held = dir.path().join("held");
    let read = dir.path().join("read");
    succeeds(&decompose_args(&video, None, &held));
    succeeds(
        &[
            &decompose_args(&video, None, &read)[..],
            &["--hold-frames-mib", "0"],
        ]
        .concat(),
    );
    let (a, b) = (files_under(&held), files_under(&read));
    assert!(a.len() > 20, "{} files", a.len());
    assert!(a == b, "the outputs differ");

    // A frame of another size is named before any work.
    gstomnimatte::dataset::write_png(
        &rgb.join("00006.png"),
        &tch::Tensor::zeros([3, 64, 65], (tch::Kind::Float, tch::Device::Cpu)),
    )
    .unwrap();
    let err = format!("{:#}", FrameSequence::open(&rgb, 0).err().unwrap());
    assert!(
        err.contains("00006.png is 65x64 but") && err.contains("00000.png is 64x64"),
        "{err}"
    );
}
