//! The streaming decomposer: one output per frame in order, exact reconstruction, bad input.

mod common;

use common::{seeded_net, square_with_shadow};
use gstomnimatte::clip::OutputFrame;
use gstomnimatte::model::OmnimatteNet;
use gstomnimatte::residual_effects::ResidualEffects;
use gstomnimatte::stream::{Decomposer, FrameLayers, StreamConfig};
use tch::{Device, Kind, Tensor};

fn config() -> StreamConfig {
    StreamConfig {
        working_height: 64,
        working_width: 64,
        objects: 2,
        ..StreamConfig::default()
    }
}

/// Frames [3, H, W] in [0, 1] and label maps [H, W] of a square with a shadow plus a static
/// second object (label 2).
fn video(n: i64) -> Vec<(Tensor, Tensor)> {
    let (frames, masks, _) = square_with_shadow(n, 64, 96);
    (0..n)
        .map(|i| {
            let frame = (frames.get(0).get(i) + 1.0) / 2.0;
            let labels = masks.get(0).get(0).get(i).get(0).to_kind(Kind::Uint8);
            let _ = labels.narrow(0, 50, 8).narrow(1, 70, 10).fill_(2);
            (frame, labels)
        })
        .collect()
}

/// Every frame of `frames` through `dec`, then the end of the stream: the outputs in order.
fn decompose_all(
    dec: &mut Decomposer,
    net: &OmnimatteNet,
    frames: &[(Tensor, Tensor)],
) -> Vec<FrameLayers> {
    let mut outputs = Vec::new();
    for (frame, labels) in frames {
        outputs.extend(dec.push(net, frame, labels).unwrap());
    }
    outputs.extend(dec.finish(net).unwrap());
    outputs
}

/// The network's own layers at the working size of every frame of `frames`, in order:
/// without the residual effects, rules applied after the network that read the frame
/// whether the network sees it or not.
fn network_layers_of(
    net: &OmnimatteNet,
    config: StreamConfig,
    frames: &[(Tensor, Tensor)],
) -> Vec<Tensor> {
    let config = StreamConfig {
        residual: ResidualEffects::default(),
        ..config
    };
    let mut dec = Decomposer::new(config, Device::Cpu).unwrap();
    decompose_all(&mut dec, net, frames)
        .iter()
        .map(|o| o.network_working.shallow_clone())
        .collect()
}

fn psnr(a: &Tensor, b: &Tensor) -> f64 {
    let mse = (a - b).square().mean(Kind::Float).double_value(&[]);
    10.0 * (1.0 / mse.max(1e-20)).log10()
}

#[test]
fn every_frame_comes_out_once_in_order_and_reconstructs_the_input() {
    let (_vs, net) = seeded_net(0);
    for n in [1, 4, 37] {
        let frames = video(n);
        let mut dec = Decomposer::new(config(), Device::Cpu).unwrap();
        let mut outputs = Vec::new();
        for (frame, labels) in &frames {
            outputs.extend(dec.push(&net, frame, labels).unwrap());
            // The warm-up holds the first 16 frames; after it, the look-ahead's 6.
            let held = if dec.received() < 16 { 15 } else { 6 };
            assert!(
                dec.pending() <= held,
                "more than the frames held are pending"
            );
        }
        outputs.extend(dec.finish(&net).unwrap());
        assert_eq!(outputs.len(), n as usize);
        for (i, out) in outputs.iter().enumerate() {
            assert_eq!(out.index, i as u64);
            assert_eq!(out.layers.size(), [2, 4, 64, 96]);
            assert_eq!(out.background.size(), [3, 64, 96]);
            let p = psnr(&out.reconstruction, &frames[i].0);
            assert!(p > 40.0, "frame {i} of {n}: reconstruction PSNR {p:.1} dB");
        }
    }
}

/// How many frames each push of `frames` let out.
fn let_out_per_push(config: StreamConfig, frames: &[(Tensor, Tensor)]) -> Vec<usize> {
    let (_vs, net) = seeded_net(0);
    let mut dec = Decomposer::new(config, Device::Cpu).unwrap();
    frames
        .iter()
        .map(|(frame, labels)| dec.push(&net, frame, labels).unwrap().len())
        .collect()
}

#[test]
fn the_warm_up_holds_the_first_frames_then_lets_them_out_at_once() {
    let frames = video(18);
    // 16 held; then the 10 whose look-ahead came, then one a frame.
    let mut expected = vec![0; 15];
    expected.extend([10, 1, 1]);
    assert_eq!(let_out_per_push(config(), &frames), expected);
    // At most the median's own frames are held.
    let short = StreamConfig {
        background_frames: 8,
        ..config()
    };
    let mut expected = vec![0; 7];
    expected.push(2);
    expected.extend([1; 10]);
    assert_eq!(let_out_per_push(short, &frames), expected);
    // Without it, from the look-ahead on.
    let none = StreamConfig {
        warm_up_frames: 0,
        ..config()
    };
    let mut expected = vec![0; 6];
    expected.extend([1; 12]);
    assert_eq!(let_out_per_push(none, &frames), expected);
}

#[test]
fn with_the_warm_up_the_first_frames_background_comes_from_all_the_held_frames() {
    let (_vs, net) = seeded_net(0);
    let (_, _, truth) = square_with_shadow(1, 64, 96);
    let truth = (truth.view([3, 64, 96]) + 1.0) / 2.0;
    // Something dark, in no mask, lies on the ground in the first 5 frames of 16 only: the
    // first frame's look-ahead (7 frames) shows it in most, the warm-up's 16 in few.
    let mut frames = video(16);
    for (frame, _) in frames.iter_mut().take(5) {
        let _ = frame.narrow(1, 40, 8).narrow(2, 10, 20).g_mul_scalar_(0.5);
    }
    let first_estimate_error = |warm_up_frames| {
        let config = StreamConfig {
            warm_up_frames,
            ..config()
        };
        let mut dec = Decomposer::new(config, Device::Cpu).unwrap();
        let outputs = decompose_all(&mut dec, &net, &frames);
        let patch = |t: &Tensor| t.narrow(1, 40, 8).narrow(2, 10, 20);
        (patch(&outputs[0].background_estimate) - patch(&truth))
            .abs()
            .mean(Kind::Float)
            .double_value(&[])
    };
    let (held, not_held) = (first_estimate_error(16), first_estimate_error(0));
    assert!(held < 0.02, "with the warm-up: {held:.3}");
    assert!(not_held > 0.1, "without it: {not_held:.3}");
}

#[test]
fn labels_above_the_object_count_are_an_error() {
    let (_vs, net) = seeded_net(0);
    let mut dec = Decomposer::new(config(), Device::Cpu).unwrap();
    let (frame, labels) = &video(1)[0];
    let bad = labels.copy();
    let _ = bad.narrow(0, 0, 2).fill_(3);
    let err = dec
        .push(&net, frame, &bad)
        .err()
        .expect("label 3 of 2 objects");
    assert!(
        err.to_string()
            .contains("mask label 3 is above the object count 2"),
        "{err}"
    );
    let err = dec
        .push(&net, frame, &labels.narrow(0, 0, 32))
        .err()
        .expect("size mismatch");
    assert!(err.to_string().contains("same size"), "{err}");
}

#[test]
fn reset_starts_a_new_stream() {
    let (_vs, net) = seeded_net(0);
    let frames = video(10);
    let mut dec = Decomposer::new(config(), Device::Cpu).unwrap();
    for (frame, labels) in &frames {
        dec.push(&net, frame, labels).unwrap();
    }
    dec.reset();
    assert_eq!(dec.pending(), 0);
    let outputs = decompose_all(&mut dec, &net, &frames[..3]);
    assert_eq!(
        outputs.iter().map(|o| o.index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

#[test]
fn a_clean_plate_replaces_the_median_background() {
    let (_vs, net) = seeded_net(0);
    let frames = video(8);
    let run = |plate: Option<&Tensor>| {
        let mut dec = Decomposer::new(config(), Device::Cpu).unwrap();
        if let Some(p) = plate {
            dec.set_background_plate(p);
        }
        decompose_all(&mut dec, &net, &frames)
    };
    // The scene's true background, as a clean plate.
    let (_, _, truth) = square_with_shadow(1, 64, 96);
    let truth = (truth.view([3, 64, 96]) + 1.0) / 2.0;
    let plated = run(Some(&truth));
    let median = run(None);
    // The network's own composite is made over the plate: where its layers are transparent,
    // it shows the plate, not the median (which holds the square's shadow where it stayed).
    let differs = (plated[4].network_reconstruction() - median[4].network_reconstruction())
        .abs()
        .max()
        .double_value(&[]);
    assert!(differs > 0.01, "the plate made no difference ({differs})");
    for out in &plated {
        // Detail transfer still makes the output reproduce the input.
        assert!(psnr(&out.reconstruction, &frames[out.index as usize].0) > 40.0);
    }
    // A plate of another size is an error naming it.
    let mut dec = Decomposer::new(config(), Device::Cpu).unwrap();
    dec.set_background_plate(&truth.narrow(2, 0, 64));
    let err = dec
        .push(&net, &frames[0].0, &frames[0].1)
        .err()
        .expect("plate size mismatch");
    assert!(err.to_string().contains("background plate"), "{err}");
}

/// With the output frame visible the network's layers of frame f use f's own image; hidden,
/// they come from the other frames' images and the masks alone (the paper's inference).
#[test]
fn the_network_sees_the_output_frame_only_when_asked() {
    let (_vs, net) = seeded_net(0);
    let original = video(16);
    let changed = video(16);
    // Frame 10 only: a bright band across it.
    let _ = changed[10].0.narrow(1, 20, 12).fill_(1.0);
    let layers_of_frame_10 = |frames: &[(Tensor, Tensor)], output_frame| {
        let config = StreamConfig {
            output_frame,
            ..config()
        };
        network_layers_of(&net, config, frames)[10].shallow_clone()
    };
    let diff = |output_frame| {
        let a = layers_of_frame_10(&original, output_frame);
        let b = layers_of_frame_10(&changed, output_frame);
        (a - b).abs().max().double_value(&[])
    };
    assert_eq!(diff(OutputFrame::Hidden), 0.0);
    assert!(diff(OutputFrame::Visible) > 1e-3);
}

#[test]
fn mirror_average_is_the_mean_of_the_clip_and_its_mirror_image() {
    use gstomnimatte::background::BackgroundMedian;
    use gstomnimatte::mirror::{average_layers, mirrored};
    let (_vs, net) = seeded_net(0);
    let frames = video(10);
    let mirror_frames: Vec<(Tensor, Tensor)> = frames
        .iter()
        .map(|(frame, labels)| (mirrored(frame), mirrored(labels)))
        .collect();
    let network_layers = |frames: &[(Tensor, Tensor)], mirror_average| -> Vec<Tensor> {
        // The masks' median (a per-pixel median mirrors with the frames), so that the three
        // runs are shown mirrored backgrounds of each other.
        let config = StreamConfig {
            mirror_average,
            output_frame: OutputFrame::Visible,
            background_median: BackgroundMedian::Masks,
            ..config()
        };
        network_layers_of(&net, config, frames)
    };
    let plain = network_layers(&frames, false);
    let of_mirror_image = network_layers(&mirror_frames, false);
    let averaged = network_layers(&frames, true);
    assert_eq!(averaged.len(), frames.len());
    for (i, got) in averaged.iter().enumerate() {
        let expected = average_layers(&plain[i], &mirrored(&of_mirror_image[i]));
        let error = (got - &expected).abs().max().double_value(&[]);
        assert!(
            error < 1e-4,
            "frame {i}: {error} from the mean of the two runs"
        );
    }
    // The mirror image is a different guess: averaging changes the layers.
    let change = (&averaged[4] - &plain[4]).abs().max().double_value(&[]);
    assert!(
        change > 1e-3,
        "averaging changed the layers by only {change}"
    );
}

/// A camera hunting for exposure: every other frame a seventh darker. The clean background
/// follows each frame's exposure with `exposure_match`, and sits between the two without it.
#[test]
fn the_clean_background_follows_each_frames_exposure() {
    let (_vs, net) = seeded_net(0);
    let frames: Vec<(Tensor, Tensor)> = video(12)
        .into_iter()
        .enumerate()
        .map(|(i, (frame, labels))| {
            let gain = if i % 2 == 1 { 0.85 } else { 1.0 };
            (frame * gain, labels)
        })
        .collect();
    // Mean absolute difference of the clean background to the darker frames where no mask
    // covers them.
    let error = |exposure_match: bool| {
        // The masks' median: the seeded network's layers cover every pixel, and with their
        // covers no frame would leave one free (the median would fall back to all values).
        let config = StreamConfig {
            exposure_match,
            background_median: gstomnimatte::background::BackgroundMedian::Masks,
            ..config()
        };
        let mut dec = Decomposer::new(config, Device::Cpu).unwrap();
        let outs = decompose_all(&mut dec, &net, &frames);
        let (mut sum, mut count) = (0.0, 0.0);
        for out in outs.iter().filter(|o| o.index % 2 == 1) {
            let (frame, labels) = &frames[out.index as usize];
            let free = labels.eq(0).to_kind(Kind::Float);
            sum += ((&out.background_estimate - frame).abs() * &free)
                .sum(Kind::Float)
                .double_value(&[]);
            count += 3.0 * free.sum(Kind::Float).double_value(&[]);
        }
        sum / count
    };
    let (matched, unmatched) = (error(true), error(false));
    assert!(
        matched < 0.5 * unmatched,
        "matched {matched:.4} against unmatched {unmatched:.4}"
    );
}

/// The pixels of object 1's layer that a rule changed: `on` and `off` are a frame's
/// `network_working` with the rule and without. Asserts that nothing changed outside `allowed`
/// [h, w] or in object 2's layer, and that every changed pixel of object 1's has alpha 0.5 and
/// the colour `colour`. Returns how many changed.
fn changed_by_rule(on: &Tensor, off: &Tensor, allowed: &Tensor, colour: [f64; 3]) -> f64 {
    let changed = (on - off)
        .abs()
        .sum_dim_intlist(1, false, Kind::Float)
        .gt(0.0); // [2, h, w]
    let elsewhere = changed.logical_and(&allowed.logical_not().unsqueeze(0));
    assert_eq!(elsewhere.sum(Kind::Float).double_value(&[]), 0.0);
    let second = changed.get(1).sum(Kind::Float).double_value(&[]);
    assert_eq!(second, 0.0, "object 2 is far from the effect");
    let first = changed.get(0);
    let alpha = on.get(0).get(3).masked_select(&first);
    let error = |t: Tensor, expected: f64| (t - expected).abs().max().double_value(&[]);
    let n = first.sum(Kind::Float).double_value(&[]);
    if n > 0.0 {
        assert!(error(alpha, 0.5) < 1e-4, "the alpha that explains it");
        for (c, expected) in colour.iter().enumerate() {
            let channel = on.get(0).get(c as i64).masked_select(&first);
            assert!(error(channel, *expected) < 1e-4, "colour {c}");
        }
    }
    n
}

/// `frames` decomposed over `plate` with one rule (residual shadows where `shadows`, else
/// residual reflections) and with neither: the outputs of both runs.
fn with_and_without(
    net: &OmnimatteNet,
    frames: &[(Tensor, Tensor)],
    plate: &Tensor,
    shadows: bool,
) -> (Vec<FrameLayers>, Vec<FrameLayers>) {
    let run = |on: bool| {
        let config = StreamConfig {
            working_width: 96,
            residual: ResidualEffects {
                shadows: on && shadows,
                reflections: on && !shadows,
            },
            ..config()
        };
        let mut dec = Decomposer::new(config, Device::Cpu).unwrap();
        dec.set_background_plate(plate);
        decompose_all(&mut dec, net, frames)
    };
    (run(true), run(false))
}

/// With `residual_shadows` the darkening joined to an object's mask outside every mask goes to
/// that object's layer, black with the alpha that explains it, where no layer's alpha is as
/// high; nothing else changes. Over a clean plate, so that the network's input is the same
/// either way.
#[test]
fn residual_shadows_give_the_darkening_beside_a_mask_to_its_object() {
    let (_vs, net) = seeded_net(0);
    let frames = video(8);
    let (_, _, truth) = square_with_shadow(1, 64, 96);
    let plate = (truth.view([3, 64, 96]) + 1.0) / 2.0;
    let (with, without) = with_and_without(&net, &frames, &plate, true);
    let brightness = |image: &Tensor| image.mean_dim(0, false, Kind::Float);
    let plate_brightness = brightness(&plate);
    let mut taken = 0.0;
    for (on, off) in with.iter().zip(&without) {
        let (frame, labels) = &frames[on.index as usize];
        // The square's shadow: half as bright as the plate, outside every mask.
        let shadow = (&plate_brightness - brightness(frame))
            .gt(0.1)
            .logical_and(&labels.eq(0));
        let (on, off) = (&on.network_working, &off.network_working);
        taken += changed_by_rule(on, off, &shadow, [0.0; 3]);
    }
    assert!(taken > 0.0, "no frame gave the square its shadow");
}

/// With `residual_reflections` the brighter residual of an object's colour joined to its mask
/// outside every mask goes to that object's layer, in the object's colour with the alpha that
/// explains it, where no layer's alpha is as high; nothing else changes. Over a clean plate.
#[test]
fn residual_reflections_give_the_objects_colour_below_it_to_its_layer() {
    let (_vs, net) = seeded_net(0);
    let (_, _, truth) = square_with_shadow(1, 64, 96);
    let plate = (truth.view([3, 64, 96]) + 1.0) / 2.0;
    let rgb = [0.95, 0.9, 0.85];
    let colour = Tensor::from_slice(&rgb)
        .to_kind(Kind::Float)
        .view([3, 1, 1]);
    // A bright square (rows 16..32) moving right, its reflection below it (rows 32..40) half
    // its colour over the plate, and a static second object.
    let x_at = |i: i64| 8 + 4 * i;
    let frames: Vec<(Tensor, Tensor)> = (0..8)
        .map(|i| {
            let frame = plate.copy();
            let labels = Tensor::zeros([64, 96], (Kind::Uint8, Device::Cpu));
            frame
                .narrow(1, 16, 16)
                .narrow(2, x_at(i), 16)
                .copy_(&colour.expand([3, 16, 16], false));
            let mixed = (frame.narrow(1, 32, 8).narrow(2, x_at(i), 16) + &colour) * 0.5;
            frame.narrow(1, 32, 8).narrow(2, x_at(i), 16).copy_(&mixed);
            let _ = labels.narrow(0, 16, 16).narrow(1, x_at(i), 16).fill_(1);
            let _ = labels.narrow(0, 50, 8).narrow(1, 70, 10).fill_(2);
            (frame, labels)
        })
        .collect();
    let (with, without) = with_and_without(&net, &frames, &plate, false);
    let mut taken = 0.0;
    for (on, off) in with.iter().zip(&without) {
        let reflection = Tensor::zeros([64, 96], (Kind::Bool, Device::Cpu));
        let _ = reflection
            .narrow(0, 32, 8)
            .narrow(1, x_at(on.index as i64), 16)
            .fill_(1);
        let (on, off) = (&on.network_working, &off.network_working);
        taken += changed_by_rule(on, off, &reflection, rgb);
    }
    assert!(taken > 0.0, "no frame gave the square its reflection");
}

/// `frames` decomposed with `clear_still_ground` as `clear`, over `plate` where one is given.
fn still_ground_run(
    net: &OmnimatteNet,
    frames: &[(Tensor, Tensor)],
    clear: bool,
    plate: Option<&Tensor>,
) -> Vec<FrameLayers> {
    let config = StreamConfig {
        working_width: 96,
        clear_still_ground: clear,
        ..config()
    };
    let mut dec = Decomposer::new(config, Device::Cpu).unwrap();
    if let Some(plate) = plate {
        dec.set_background_plate(plate);
    }
    decompose_all(&mut dec, net, frames)
}

/// With `clear_still_ground` a layer's alpha changes only outside every mask, where it
/// becomes 0 and the background pad shows the frame; the median's covers are taken before
/// the clearing (and the estimate it reads leaves the median as it is), so the estimates are
/// the same either way.
#[test]
fn clearing_still_ground_changes_only_the_ground_nothing_crossed() {
    let (_vs, net) = seeded_net(0);
    let frames = video(24);
    let (with, without) = (
        still_ground_run(&net, &frames, true, None),
        still_ground_run(&net, &frames, false, None),
    );
    assert_eq!(with.len(), frames.len());
    let mut cleared = 0.0;
    for (on, off) in with.iter().zip(&without) {
        let (frame, labels) = &frames[on.index as usize];
        assert!(
            on.background_estimate.equal(&off.background_estimate),
            "frame {}: the rule changed the median",
            on.index
        );
        let changed = (&on.layers - &off.layers)
            .abs()
            .amax([0, 1].as_slice(), false)
            .gt(0.0); // [H, W]
        let inside = changed.logical_and(&labels.gt(0));
        assert_eq!(inside.sum(Kind::Float).double_value(&[]), 0.0);
        let alpha = on.layers.narrow(1, 3, 1).squeeze_dim(1); // [L, H, W]
        let left = alpha.masked_select(&changed.unsqueeze(0).expand_as(&alpha));
        assert_eq!(left.abs().sum(Kind::Float).double_value(&[]), 0.0);
        let at_changed =
            |image: &Tensor| image.masked_select(&changed.unsqueeze(0).expand([3, -1, -1], false));
        assert!(
            at_changed(&on.background).equal(&at_changed(frame)),
            "the background pad shows the frame there"
        );
        assert!(psnr(&on.reconstruction, frame) > 40.0);
        cleared += changed.sum(Kind::Float).double_value(&[]);
    }
    assert!(
        cleared > 0.0,
        "a random network's layers hold alpha on the still ground"
    );
}

/// Over a clean plate there are no median frames to ask: the rule leaves the layers alone.
#[test]
fn still_ground_is_not_cleared_over_a_plate() {
    let (_vs, net) = seeded_net(0);
    let frames = video(8);
    let (_, _, truth) = square_with_shadow(1, 64, 96);
    let plate = (truth.view([3, 64, 96]) + 1.0) / 2.0;
    let run = |clear: bool| still_ground_run(&net, &frames, clear, Some(&plate));
    for (on, off) in run(true).iter().zip(&run(false)) {
        assert!(on.layers.equal(&off.layers));
    }
}
