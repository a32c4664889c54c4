//! Mask PNGs stored the ways segmenters and datasets store them (palette indices as in DAVIS,
//! 16-bit gray, 1-bit and 8-bit binary masks) read as the labels they mean, and masks stored
//! in ways that do not say which pixel is which object refused with a clear error.

#[path = "common/cli.rs"]
mod cli;

use cli::{decompose_args, fails_with, gst_launch, succeeds, tiny_scene};
use gstomnimatte::dataset::read_video;
use gstomnimatte::label_maps::{object_count, read_label_maps, LabelMaps};
use gstomnimatte::label_png::read_mask_png;
use gstomnimatte::synth::EffectKind;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use tch::{Kind, Tensor};

/// DAVIS's palette: index 1 dark red, 2 dark green, 3 olive, ...
fn davis_palette() -> Vec<u8> {
    (0..256u32)
        .flat_map(|i| {
            let (mut r, mut g, mut b, mut c) = (0u8, 0u8, 0u8, i);
            for j in 0..8 {
                r |= ((c & 1) as u8) << (7 - j);
                g |= (((c >> 1) & 1) as u8) << (7 - j);
                b |= (((c >> 2) & 1) as u8) << (7 - j);
                c >>= 3;
            }
            [r, g, b]
        })
        .collect()
}

/// Writes a PNG of `color` at `depth` from rows already packed as the format stores them.
fn write_raw(
    path: &Path,
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
) {
    let mut encoder = png::Encoder::new(BufWriter::new(File::create(path).unwrap()), w, h);
    encoder.set_color(color);
    encoder.set_depth(depth);
    if color == png::ColorType::Indexed {
        encoder.set_palette(davis_palette()[..3 << (depth as u32)].to_vec());
    }
    encoder
        .write_header()
        .unwrap()
        .write_image_data(data)
        .unwrap();
}

/// Packs one sample per pixel at `bits` (1, 2, 4, 8 or 16), rows padded to whole bytes.
fn pack(values: &[u16], w: usize, bits: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for row in values.chunks(w) {
        if bits == 16 {
            out.extend(row.iter().flat_map(|v| v.to_be_bytes()));
            continue;
        }
        let mut bytes = vec![0u8; (w * bits).div_ceil(8)];
        for (x, &v) in row.iter().enumerate() {
            let bit = x * bits;
            bytes[bit / 8] |= (v as u8) << (8 - bits - bit % 8);
        }
        out.extend(bytes);
    }
    out
}

fn values(path: &Path) -> Vec<i64> {
    Vec::try_from(
        read_mask_png(path)
            .unwrap()
            .values
            .view([-1])
            .to_kind(Kind::Int64),
    )
    .unwrap()
}

/// A 5x2 label map using every label up to `top`.
fn labels(top: u16) -> Vec<u16> {
    (0..10).map(|i| i % (top + 1)).collect()
}

#[test]
fn palette_pngs_are_read_as_their_indices_not_their_colours() {
    let dir = tempfile::tempdir().unwrap();
    for (depth, bits) in [
        (png::BitDepth::Eight, 8),
        (png::BitDepth::Four, 4),
        (png::BitDepth::Two, 2),
    ] {
        let path = dir.path().join(format!("palette{bits}.png"));
        let top = 3;
        write_raw(
            &path,
            5,
            2,
            png::ColorType::Indexed,
            depth,
            &pack(&labels(top), 5, bits),
        );
        let mask = read_mask_png(&path).unwrap();
        assert!(mask.palette);
        // Index 2 is DAVIS's pure green: read as a colour its red channel would be 0.
        assert_eq!(
            values(&path),
            labels(top).iter().map(|&v| v as i64).collect::<Vec<_>>(),
            "{bits} bits"
        );
    }
}

#[test]
fn gray_label_maps_keep_their_labels_at_sixteen_bits_and_below_eight() {
    let dir = tempfile::tempdir().unwrap();
    for (depth, bits, top) in [
        (png::BitDepth::Sixteen, 16, 5),
        (png::BitDepth::Eight, 8, 5),
        (png::BitDepth::Four, 4, 5),
        (png::BitDepth::One, 1, 1),
    ] {
        let path = dir.path().join(format!("gray{bits}.png"));
        write_raw(
            &path,
            5,
            2,
            png::ColorType::Grayscale,
            depth,
            &pack(&labels(top), 5, bits),
        );
        assert_eq!(
            values(&path),
            labels(top).iter().map(|&v| v as i64).collect::<Vec<_>>(),
            "{bits} bits"
        );
    }

    // A 16-bit label no 8-bit label map holds is an error naming it, not its high byte.
    let folder = dir.path().join("wide");
    std::fs::create_dir(&folder).unwrap();
    let wide: Vec<u16> = (0..10).map(|i| if i == 3 { 300 } else { i % 2 }).collect();
    write_raw(
        &folder.join("00000.png"),
        5,
        2,
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        &pack(&wide, 5, 16),
    );
    let err = format!("{:#}", read_label_maps(&folder).unwrap_err());
    assert!(err.contains("label 300"), "{err}");
}

#[test]
fn a_colour_mask_is_an_error_naming_its_file_and_a_gray_rgb_one_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let gray = dir.path().join("gray_rgb.png");
    let rgb: Vec<u8> = labels(2).iter().flat_map(|&v| [v as u8; 3]).collect();
    write_raw(&gray, 5, 2, png::ColorType::Rgb, png::BitDepth::Eight, &rgb);
    assert_eq!(
        values(&gray),
        labels(2).iter().map(|&v| v as i64).collect::<Vec<_>>()
    );

    let colour = dir.path().join("colour.png");
    let mut rgb = rgb.clone();
    rgb[3 * 7 + 1] = 200;
    write_raw(
        &colour,
        5,
        2,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &rgb,
    );
    let err = format!("{:#}", read_mask_png(&colour).err().expect("a colour mask"));
    assert!(
        err.contains("colour.png") && err.contains("pixel 2,1 is not gray"),
        "{err}"
    );
}

#[test]
fn a_folder_of_binary_masks_is_one_object_and_its_labels_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    // 0/255 at 8 bits, 0/65535 at 16 bits: white is object 1.
    for (name, depth, bits, white) in [
        ("eight", png::BitDepth::Eight, 8, 255u16),
        ("sixteen", png::BitDepth::Sixteen, 16, 65535),
    ] {
        let folder = dir.path().join(name);
        std::fs::create_dir(&folder).unwrap();
        for t in 0..3u16 {
            let mask: Vec<u16> = (0..10)
                .map(|i| if (i + t) % 3 == 0 { white } else { 0 })
                .collect();
            write_raw(
                &folder.join(format!("{t:05}.png")),
                5,
                2,
                png::ColorType::Grayscale,
                depth,
                &pack(&mask, 5, bits),
            );
        }
        let maps = read_label_maps(&folder).unwrap();
        assert_eq!(maps.size(), [3, 2, 5]);
        assert_eq!(maps.max().int64_value(&[]), 1, "{name}");
        assert_eq!(maps.sum(Kind::Int64).int64_value(&[]), 10, "{name}");
        assert_eq!(object_count(&maps, None).unwrap(), 1);
    }

    // Gray levels spread over 0-255 for visibility are not 200 objects: an error that says how
    // labels are stored, unless the count is given.
    let spread = Tensor::from_slice(&[0u8, 100, 200]).view([1, 1, 3]);
    let err = format!("{:#}", object_count(&spread, None).unwrap_err());
    assert!(
        err.contains("label 200") && err.contains("[0, 100, 200]") && err.contains("--objects 200"),
        "{err}"
    );
    assert_eq!(object_count(&spread, Some(200)).unwrap(), 200);
    let err = format!("{:#}", object_count(&spread, Some(2)).unwrap_err());
    assert!(err.contains("label 200 but --objects is 2"), "{err}");
}

/// The per-object mask folders of an Omnimatte folder, written again as DAVIS palette PNGs
/// (one label map a frame).
fn write_palette_masks(video: &Path, out: &Path) {
    let masks = read_video(video).unwrap().masks; // [L, T, 1, H, W]
    let (l, t, h, w) = (
        masks.size()[0],
        masks.size()[1],
        masks.size()[3],
        masks.size()[4],
    );
    std::fs::create_dir_all(out).unwrap();
    for f in 0..t {
        let mut map = Tensor::zeros([h, w], (Kind::Uint8, tch::Device::Cpu));
        for k in 0..l {
            // Later objects in front, as the per-object folders mean.
            let covered = masks.get(k).get(f).get(0).ge(0.5);
            let _ = map.masked_fill_(&covered, k + 1);
        }
        let bytes = Vec::<u8>::try_from(map.view([-1])).unwrap();
        write_raw(
            &out.join(format!("{f:05}.png")),
            w as u32,
            h as u32,
            png::ColorType::Indexed,
            png::BitDepth::Eight,
            &bytes,
        );
    }
}

#[test]
fn decompose_reads_davis_palette_masks_as_the_objects_they_label() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("video");
    tiny_scene(&video, 6, EffectKind::Both, 11);
    let palette = dir.path().join("palette");
    write_palette_masks(&video, &palette);
    assert!(read_label_maps(&palette)
        .unwrap()
        .equal(&read_label_maps(&video.join("mask")).unwrap()));

    let from_folders = dir.path().join("from_folders");
    let from_palette = dir.path().join("from_palette");
    succeeds(&decompose_args(&video, None, &from_folders));
    succeeds(&decompose_args(&video, Some(&palette), &from_palette));
    for layer in ["layer_01", "layer_02"] {
        for f in 0..6 {
            let name = format!("{f:05}.png");
            assert_eq!(
                std::fs::read(from_palette.join(layer).join(&name)).unwrap(),
                std::fs::read(from_folders.join(layer).join(&name)).unwrap(),
                "{layer}/{name}"
            );
        }
    }
    assert!(!from_palette.join("layer_03").exists());

    // `omnimatte labels` writes them as the 8-bit gray label maps the element's mask pad takes:
    // the same labels, decoded by GStreamer's pngdec straight to GRAY8.
    let gray = dir.path().join("gray");
    succeeds(&[
        "labels",
        "--masks",
        palette.to_str().unwrap(),
        "--out",
        gray.to_str().unwrap(),
    ]);
    assert!(read_label_maps(&gray)
        .unwrap()
        .equal(&read_label_maps(&video.join("mask")).unwrap()));
    gst_launch(
        &[
            "multifilesrc",
            &format!("location={}/%05d.png", gray.display()),
            "stop-index=5",
            "caps=image/png,framerate=25/1",
            "!",
            "pngdec",
            "!",
            "video/x-raw,format=GRAY8,width=64,height=64",
            "!",
            "fakesink",
        ],
        "the label maps did not decode to GRAY8",
    );

    // Masks stored as colours say nothing of which colour is which object.
    let colour = dir.path().join("colour");
    std::fs::create_dir(&colour).unwrap();
    for f in 0..6 {
        let rgb: Vec<u8> = (0..64 * 64)
            .flat_map(|i| if i % 7 == 0 { [0, 128, 0] } else { [0, 0, 0] })
            .collect();
        write_raw(
            &colour.join(format!("{f:05}.png")),
            64,
            64,
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            &rgb,
        );
    }
    fails_with(
        &decompose_args(&video, Some(&colour), &dir.path().join("x")),
        "a colour mask",
    );
}

#[test]
fn masks_at_a_lower_resolution_of_the_same_shape_are_scaled_to_the_frames() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("video");
    tiny_scene(&video, 4, EffectKind::Both, 13);
    let full = read_label_maps(&video.join("mask")).unwrap();
    let write_maps = |folder: &Path, maps: &Tensor| {
        std::fs::create_dir_all(folder).unwrap();
        for t in 0..maps.size()[0] {
            let map = maps.get(t).unsqueeze(0).to_kind(Kind::Float) / 255.0;
            gstomnimatte::dataset::write_png(&folder.join(format!("{t:05}.png")), &map).unwrap();
        }
    };
    // Every second pixel: a segmenter run at half the resolution.
    let half = dir.path().join("half");
    write_maps(&half, &full.slice(1, 0, 64, 2).slice(2, 0, 64, 2));
    let out = dir.path().join("out");
    let run = cli::omnimatte(&decompose_args(&video, Some(&half), &out));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("masks 32x32 scaled to the frames' 64x64"),
        "{stderr}"
    );
    let layer = gstomnimatte::dataset::read_png(&out.join("layer_01/00000.png")).unwrap();
    assert_eq!(layer.size(), [4, 64, 64]);

    // Another shape is no lower resolution of the frames: an error.
    let narrow = dir.path().join("narrow");
    write_maps(&narrow, &full.slice(2, 0, 64, 2));
    fails_with(
        &decompose_args(&video, Some(&narrow), &dir.path().join("unused")),
        "frames are 64x64 but masks 32x64",
    );
}

/// Writes 8-bit gray masks of `values` (rows of width 5) as 00000.png, 00001.png, ...
fn write_gray_masks(folder: &Path, frames: &[Vec<u16>]) {
    std::fs::create_dir_all(folder).unwrap();
    for (t, values) in frames.iter().enumerate() {
        write_raw(
            &folder.join(format!("{t:05}.png")),
            5,
            (values.len() / 5) as u32,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &pack(values, 5, 8),
        );
    }
}

#[test]
fn label_maps_over_the_limit_are_kept_in_a_file_and_read_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("video");
    tiny_scene(&video, 5, EffectKind::Shadows, 4);
    let palette = dir.path().join("palette");
    write_palette_masks(&video, &palette);
    let binary = dir.path().join("binary");
    let white = |t: u16| (0..10).map(|i| if i % 4 == t { 255 } else { 0 }).collect();
    write_gray_masks(&binary, &[white(0), vec![0; 10], white(3)]);
    let spill = dir.path().join("spill");
    for (folder, objects) in [(video.join("mask"), 2), (palette, 2), (binary.clone(), 1)] {
        let held = LabelMaps::read_folder(&folder, u64::MAX, &spill, None).unwrap();
        let spilled = LabelMaps::read_folder(&folder, 0, &spill, None).unwrap();
        assert!(held.held() && !spilled.held(), "{}", folder.display());
        let maps = spilled.to_tensor().unwrap();
        assert!(
            maps.equal(&held.to_tensor().unwrap()),
            "{}",
            folder.display()
        );
        assert_eq!(maps.max().int64_value(&[]), objects);
        assert_eq!(spilled.object_count(None).unwrap(), objects as usize);
        // The file is in no folder: nothing left behind.
        assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0);
    }

    // Masks brought to the frames' size when they have the frames' shape, refused otherwise.
    let scaled = LabelMaps::read_folder(&binary, 0, &spill, Some((4, 10))).unwrap();
    let small = read_label_maps(&binary).unwrap();
    assert!(scaled.to_tensor().unwrap().equal(
        &small
            .repeat_interleave_self_int(2, 1, None)
            .repeat_interleave_self_int(2, 2, None)
    ));
    let err = format!(
        "{:#}",
        LabelMaps::read_folder(&binary, 0, &spill, Some((4, 5)))
            .err()
            .unwrap()
    );
    assert!(err.contains("frames are 5x4 but masks 5x2"), "{err}");

    // Spread gray levels: the error lists the values every map holds, read back from the file.
    let spread = dir.path().join("spread");
    write_gray_masks(
        &spread,
        &[vec![0; 10], [vec![100; 5], vec![200; 5]].concat()],
    );
    let maps = LabelMaps::read_folder(&spread, 0, &spill, None).unwrap();
    let err = format!("{:#}", maps.object_count(None).unwrap_err());
    assert!(
        err.contains("label 200") && err.contains("[0, 100, 200]"),
        "{err}"
    );
    assert_eq!(maps.object_count(Some(200)).unwrap(), 200);

    // A 16-bit binary mask among label maps: its white is label 65535, not object 1.
    let mixed = dir.path().join("mixed");
    write_gray_masks(&mixed, &[labels(2)]);
    let wide: Vec<u16> = (0..10).map(|i| if i < 3 { 65535 } else { 0 }).collect();
    write_raw(
        &mixed.join("00001.png"),
        5,
        2,
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        &pack(&wide, 5, 16),
    );
    let err = format!("{:#}", read_label_maps(&mixed).unwrap_err());
    assert!(err.contains("label 65535"), "{err}");

    // Object folders of different lengths, and a mask of another size, are named.
    let objects = dir.path().join("objects");
    write_gray_masks(&objects.join("01"), &[white(0), white(1)]);
    write_gray_masks(&objects.join("02"), &[white(2)]);
    let err = format!("{:#}", read_label_maps(&objects).unwrap_err());
    assert!(
        err.contains("02: 1 masks, but") && err.contains("01 has 2"),
        "{err}"
    );
    write_gray_masks(&objects.join("02"), &[white(2), vec![0; 15]]);
    let err = format!("{:#}", read_label_maps(&objects).unwrap_err());
    assert!(
        err.contains("00001.png is 5x3 but") && err.contains("is 5x2"),
        "{err}"
    );
}
