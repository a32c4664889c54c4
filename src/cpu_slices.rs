//! The elements of contiguous CPU tensors borrowed as Rust slices, for the per-pixel loops
//! that libtorch's element-wise operators would run as many full-size passes.

use tch::{Device, Kind, Tensor};

fn check(t: &Tensor, kind: Kind) {
    assert!(
        t.kind() == kind && t.device() == Device::Cpu && t.is_contiguous(),
        "a contiguous CPU {kind:?} tensor, got {:?} on {:?}",
        t.kind(),
        t.device()
    );
}

/// The elements of a contiguous CPU f32 tensor.
pub fn floats(t: &Tensor) -> &[f32] {
    check(t, Kind::Float);
    if t.numel() == 0 {
        return &[];
    }
    // SAFETY: the tensor is contiguous, on the CPU, of f32 and not empty (so its data pointer
    // is valid for numel elements) and outlives the borrow; callers do not write to it through
    // another handle while the slice lives.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) }
}

/// The elements of a contiguous CPU f32 tensor, to write.
pub fn floats_mut(t: &mut Tensor) -> &mut [f32] {
    check(t, Kind::Float);
    if t.numel() == 0 {
        return &mut [];
    }
    // SAFETY: as in `floats`; the exclusive borrow of this handle stands for the storage
    // (callers pass tensors they have just allocated and share with no one).
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel()) }
}

/// The elements of a contiguous CPU u8 tensor.
pub fn bytes(t: &Tensor) -> &[u8] {
    check(t, Kind::Uint8);
    if t.numel() == 0 {
        return &[];
    }
    // SAFETY: as in `floats`, for u8.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const u8, t.numel()) }
}
