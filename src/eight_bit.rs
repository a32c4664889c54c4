//! Colours in [0, 1] to 8 bits, rounded half to even as libtorch rounds (so images written by
//! the element, the CLI and the tensors' own conversion agree to the byte).

/// One value; the cast saturates below 0 and above 255.
#[inline(always)]
pub fn quantise(v: f32) -> u8 {
    (v * 255.0).round_ties_even() as u8
}

/// Every value of `floats` into `bytes` (of the same length).
pub fn quantise_all(floats: &[f32], bytes: &mut [u8]) {
    assert_eq!(floats.len(), bytes.len(), "one byte per float");
    // Compiled for AVX2 where the CPU has it, rounding is one instruction for 8 floats (the
    // default x86-64 target has no rounding instruction: a libm call per value).
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the feature `quantise_all_avx2` is compiled for.
        return unsafe { quantise_all_avx2(floats, bytes) };
    }
    quantise_each(floats, bytes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantise_all_avx2(floats: &[f32], bytes: &mut [u8]) {
    quantise_each(floats, bytes)
}

#[inline(always)]
fn quantise_each(floats: &[f32], bytes: &mut [u8]) {
    for (b, &v) in bytes.iter_mut().zip(floats) {
        *b = quantise(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn quantising_rounds_as_libtorch() {
        tch::manual_seed(5);
        let values = Tensor::rand([1000], (Kind::Float, tch::Device::Cpu)) * 1.2 - 0.1;
        let halves = Tensor::from_slice(&[0.5f32, 1.5, 2.5, 126.5, 254.5]) / 255.0;
        let values = Tensor::cat(&[values, halves], 0);
        let floats = Vec::<f32>::try_from(&values).unwrap();
        let mut bytes = vec![0u8; floats.len()];
        quantise_all(&floats, &mut bytes);
        let expected = (&values * 255.0)
            .round()
            .clamp(0.0, 255.0)
            .to_kind(Kind::Uint8);
        assert_eq!(bytes, Vec::<u8>::try_from(&expected).unwrap());
    }
}
