//! Clip sampling and the inference plan, including the first and last frames of a video.

use gstomnimatte::clip::{
    clip_frames, inference_plan, inference_visibility, predict_visibility, random_start,
    recency_biased_start, ClipSpec, HiddenPattern, OutputFrame, OutputFrameChoice,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[test]
fn default_clip_spans_thirteen_frames() {
    let spec = ClipSpec::default();
    assert_eq!((spec.length, spec.gap, spec.span()), (5, 3, 13));
    assert_eq!((spec.look_back(), spec.look_ahead()), (6, 6));
    assert_eq!(clip_frames(spec, 4, 100), vec![4, 7, 10, 13, 16]);
    assert_eq!(clip_frames(spec, 0, 8), vec![0, 3, 6, 7, 7]);
    assert!(ClipSpec::new(2, 3).is_err());
    assert!(ClipSpec::new(5, 0).is_err());
}

#[test]
fn pretraining_hides_three_random_frames() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut patterns = std::collections::HashSet::new();
    for _ in 0..200 {
        let v = HiddenPattern::Random { count: 3 }.sample(5, &mut rng);
        assert_eq!(v.iter().filter(|&&x| !x).count(), 3);
        patterns.insert(v);
    }
    assert_eq!(patterns.len(), 10, "all C(5,3) patterns occur");
}

#[test]
fn predict_pattern_and_its_flip() {
    assert_eq!(
        predict_visibility(5, false),
        vec![true, true, false, false, false]
    );
    assert_eq!(
        predict_visibility(5, true),
        vec![false, false, false, true, true]
    );
    let mut rng = StdRng::seed_from_u64(1);
    let flips = (0..400)
        .filter(|_| HiddenPattern::Predict.sample(5, &mut rng)[0])
        .count();
    assert!((150..250).contains(&flips), "{flips} of 400 unflipped");
}

#[test]
fn pretraining_can_draw_the_pattern_inference_uses() {
    // The pattern pretraining draws is the one inference_plan shows, for both directions.
    let spec = ClipSpec::default();
    for (f, flipped) in [(20, false), (0, true)] {
        let plan = inference_plan(spec, f, Some(40), OutputFrame::Visible);
        assert_eq!(plan.visible, inference_visibility(5, flipped));
    }
    assert_eq!(
        inference_visibility(5, false),
        vec![true, true, true, false, false]
    );
    let mut rng = StdRng::seed_from_u64(3);
    let pattern = HiddenPattern::RandomOrInference {
        count: 2,
        inference_share: 0.5,
    };
    let draws: Vec<Vec<bool>> = (0..400).map(|_| pattern.sample(5, &mut rng)).collect();
    assert!(draws.iter().all(|v| v.iter().filter(|&&x| !x).count() == 2));
    let inference = draws
        .iter()
        .filter(|v| **v == inference_visibility(5, false) || **v == inference_visibility(5, true))
        .count();
    // Half drawn as inference's, and a fifth of the random half lands on one of the two
    // patterns by chance (2 of C(5,2) = 10): about 240 of 400.
    assert!((200..280).contains(&inference), "{inference} of 400");
    // At share 0 the draws are those of the random pattern, one for one (the same stream).
    let never = HiddenPattern::RandomOrInference {
        count: 3,
        inference_share: 0.0,
    };
    let (mut a, mut b) = (StdRng::seed_from_u64(4), StdRng::seed_from_u64(4));
    for _ in 0..50 {
        assert_eq!(
            never.sample(5, &mut a),
            HiddenPattern::Random { count: 3 }.sample(5, &mut b)
        );
    }
}

#[test]
fn random_starts_keep_clips_inside_the_video() {
    let mut rng = StdRng::seed_from_u64(2);
    let spec = ClipSpec::default();
    for _ in 0..100 {
        let s = random_start(spec, 24, &mut rng);
        assert!(s + spec.span() <= 24);
    }
    assert_eq!(random_start(spec, 5, &mut rng), 0);
}

#[test]
fn recent_clips_lie_among_the_newest_two_spans_and_share_zero_is_uniform() {
    let spec = ClipSpec::default(); // a span of 13 frames
    let mut rng = StdRng::seed_from_u64(3);
    let starts: Vec<usize> = (0..200)
        .map(|_| recency_biased_start(spec, 60, 1.0, &mut rng))
        .collect();
    // Inside the newest 26 frames, the clip inside the window, both ends drawn.
    assert!(starts.iter().all(|&s| (34..=47).contains(&s)), "{starts:?}");
    assert!(starts.contains(&34) && starts.contains(&47), "{starts:?}");
    // Half of them: about half the starts are older than the newest two spans.
    let older = (0..1000)
        .filter(|_| recency_biased_start(spec, 60, 0.5, &mut rng) < 34)
        .count();
    assert!((300..=500).contains(&older), "{older} of 1000 older");
    // Share 0 draws exactly what random_start draws from the same stream.
    let (mut a, mut b) = (StdRng::seed_from_u64(4), StdRng::seed_from_u64(4));
    for _ in 0..50 {
        assert_eq!(
            recency_biased_start(spec, 60, 0.0, &mut a),
            random_start(spec, 60, &mut b)
        );
    }
    // Fewer frames than two spans, or than one: still inside what there is.
    assert!(recency_biased_start(spec, 20, 1.0, &mut rng) <= 7);
    assert_eq!(recency_biased_start(spec, 5, 1.0, &mut rng), 0);
}

#[test]
fn inference_looks_back_in_the_middle_of_a_video() {
    let p = inference_plan(ClipSpec::default(), 10, Some(24), OutputFrame::Hidden);
    assert_eq!(p.frames, vec![4, 7, 10, 13, 16]);
    assert_eq!(p.visible, vec![true, true, false, false, false]);
    assert_eq!(p.output_index, 2);
    assert_eq!(p.frames[p.output_index], 10);
}

#[test]
fn inference_looks_ahead_at_the_start() {
    let p = inference_plan(ClipSpec::default(), 0, Some(24), OutputFrame::Hidden);
    assert_eq!(p.visible, vec![false, false, false, true, true]);
    assert_eq!(p.frames, vec![0, 0, 0, 3, 6]);
    assert_eq!(p.frames[p.output_index], 0);
    // The first frame that can look back uses the normal pattern.
    let p = inference_plan(ClipSpec::default(), 6, Some(24), OutputFrame::Hidden);
    assert!(p.visible[0]);
    assert_eq!(p.frames, vec![0, 3, 6, 9, 12]);
}

#[test]
fn inference_clamps_at_the_end_and_in_tiny_videos() {
    let p = inference_plan(ClipSpec::default(), 23, Some(24), OutputFrame::Hidden);
    assert_eq!(p.frames, vec![17, 20, 23, 23, 23]);
    assert_eq!(p.frames[p.output_index], 23);
    for f in 0..3 {
        let p = inference_plan(ClipSpec::default(), f, Some(3), OutputFrame::Hidden);
        assert!(p.frames.iter().all(|&i| i < 3));
        assert_eq!(p.frames[p.output_index], f);
    }
    // Streams of unknown length clamp at the start only.
    assert_eq!(
        inference_plan(ClipSpec::default(), 100, None, OutputFrame::Hidden).frames,
        vec![94, 97, 100, 103, 106]
    );
}

#[test]
fn every_frame_of_a_video_is_the_output_of_its_plan() {
    for spec in [ClipSpec::default(), ClipSpec::new(7, 2).unwrap()] {
        for n in [1, 5, 13, 40] {
            for f in 0..n {
                let p = inference_plan(spec, f, Some(n), OutputFrame::Hidden);
                assert_eq!(p.frames.len(), spec.length);
                assert_eq!(p.frames[p.output_index], f);
                assert!(!p.visible[p.output_index]);
                // Seeing the output frame changes that slot alone.
                let seen = inference_plan(spec, f, Some(n), OutputFrame::Visible);
                assert_eq!(seen.frames, p.frames);
                assert!(seen.visible[seen.output_index]);
                let others = |plan: &gstomnimatte::clip::InferencePlan| {
                    let mut v = plan.visible.clone();
                    v.remove(plan.output_index);
                    v
                };
                assert_eq!(others(&seen), others(&p));
            }
        }
    }
}

#[test]
fn output_frame_auto_is_visible_unless_the_weights_were_fine_tuned() {
    assert_eq!(OutputFrameChoice::Auto.resolve(false), OutputFrame::Visible);
    assert_eq!(OutputFrameChoice::Auto.resolve(true), OutputFrame::Hidden);
    for fine_tuned in [false, true] {
        assert_eq!(
            OutputFrameChoice::Hidden.resolve(fine_tuned),
            OutputFrame::Hidden
        );
        assert_eq!(
            OutputFrameChoice::Visible.resolve(fine_tuned),
            OutputFrame::Visible
        );
    }
    let err = "seen".parse::<OutputFrameChoice>().unwrap_err();
    assert!(
        err.to_string().contains("expected auto, hidden or visible"),
        "{err}"
    );
}
