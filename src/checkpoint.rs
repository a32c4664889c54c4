//! Training checkpoints that are all or nothing: the weights, AdamW's moment estimates and the
//! state (step, settings) of one step, never a mix of two.
//!
//! A checkpoint of `W.safetensors` at step N is the folder `W.ckpt.N/` (weights.safetensors,
//! optim.safetensors, state.json with the size and hash of both files), written completely and
//! synced, then published by renaming a symlink `W.ckpt` onto it (a rename is atomic), then the
//! older folders are removed. A kill at any moment leaves `W.ckpt` pointing at a complete
//! checkpoint. Resuming checks the hashes and refuses a folder whose files do not belong
//! together. `W.safetensors` itself (the weights users load) is refreshed after each publish.

use anyhow::Context;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const WEIGHTS: &str = "weights.safetensors";
const OPTIMIZER: &str = "optim.safetensors";
const STATE: &str = "state.json";

/// The published checkpoint of the weights file `out`: `<out>.ckpt`.
pub fn link_path(out: &Path) -> PathBuf {
    out.with_extension("ckpt")
}

fn folder_path(out: &Path, step: u64) -> PathBuf {
    out.with_extension(format!("ckpt.{step}"))
}

/// FNV-1a over a file's bytes: enough to tell two checkpoints' files apart.
fn file_hash(path: &Path) -> anyhow::Result<(u64, String)> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Ok((bytes.len() as u64, format!("{hash:016x}")))
}

fn sync_file(path: &Path) -> anyhow::Result<()> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", path.display()))
}

/// Files of a checkpoint being written.
pub struct CheckpointFiles {
    pub weights: PathBuf,
    pub optimizer: PathBuf,
    folder: PathBuf,
    step: u64,
}

/// Starts the checkpoint of `out` at `step`: the caller writes the two files it names, then
/// calls [`publish`].
pub fn begin(out: &Path, step: u64) -> anyhow::Result<CheckpointFiles> {
    let folder = folder_path(out, step);
    if folder.exists() {
        fs::remove_dir_all(&folder).with_context(|| format!("removing {}", folder.display()))?;
    }
    fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    Ok(CheckpointFiles {
        weights: folder.join(WEIGHTS),
        optimizer: folder.join(OPTIMIZER),
        folder,
        step,
    })
}

/// Writes the state (with the files' hashes), syncs everything, points `<out>.ckpt` at the new
/// folder, refreshes `out` with its weights and removes older checkpoints.
pub fn publish(
    out: &Path,
    files: CheckpointFiles,
    mut state: serde_json::Value,
) -> anyhow::Result<()> {
    let (weights_bytes, weights_hash) = file_hash(&files.weights)?;
    let (optim_bytes, optim_hash) = file_hash(&files.optimizer)?;
    state["step"] = files.step.into();
    state["files"] = serde_json::json!({
        WEIGHTS: { "bytes": weights_bytes, "fnv1a": weights_hash },
        OPTIMIZER: { "bytes": optim_bytes, "fnv1a": optim_hash },
    });
    let state_path = files.folder.join(STATE);
    let mut f = fs::File::create(&state_path)
        .with_context(|| format!("creating {}", state_path.display()))?;
    f.write_all(serde_json::to_string_pretty(&state)?.as_bytes())?;
    f.sync_all()?;
    sync_file(&files.weights)?;
    sync_file(&files.optimizer)?;
    fs::File::open(&files.folder)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", files.folder.display()))?;

    let link = link_path(out);
    let tmp_link = out.with_extension("ckpt.link-tmp");
    let _ = fs::remove_file(&tmp_link);
    let target = files.folder.file_name().context("checkpoint folder name")?;
    std::os::unix::fs::symlink(target, &tmp_link)
        .with_context(|| format!("linking {}", tmp_link.display()))?;
    fs::rename(&tmp_link, &link).with_context(|| format!("publishing {}", link.display()))?;

    // The weights users load, and the state beside them, refreshed whole (write, then rename).
    let tmp = out.with_extension("tmp.safetensors");
    fs::copy(&files.weights, &tmp)?;
    fs::rename(&tmp, out)?;
    crate::whole_file::replace(
        &out.with_extension("json"),
        serde_json::to_string_pretty(&state)?,
    )?;

    remove_older(out, files.step)
}

/// Removes checkpoint folders of `out` other than the one of `keep`.
fn remove_older(out: &Path, keep: u64) -> anyhow::Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = format!(
        "{}.ckpt.",
        out.file_stem().unwrap_or_default().to_string_lossy()
    );
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(step) = name.strip_prefix(&prefix) else {
            continue;
        };
        if step.parse::<u64>().is_ok_and(|s| s != keep) && entry.path().is_dir() {
            fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// A published checkpoint, checked: its files belong together.
pub struct Published {
    pub weights: PathBuf,
    pub optimizer: PathBuf,
    pub state: serde_json::Value,
    pub step: u64,
}

/// The checkpoint `<out>.ckpt` points at, or None when there is none. A folder whose files do
/// not match the hashes written with them is an error, never a silent mix.
pub fn load(out: &Path) -> anyhow::Result<Option<Published>> {
    let link = link_path(out);
    if fs::symlink_metadata(&link).is_err() {
        return Ok(None);
    }
    let folder = fs::canonicalize(&link)
        .with_context(|| format!("{} points at no checkpoint", link.display()))?;
    let state_path = folder.join(STATE);
    let state: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(&state_path)
            .with_context(|| format!("reading {}", state_path.display()))?,
    )
    .with_context(|| format!("parsing {}", state_path.display()))?;
    for name in [WEIGHTS, OPTIMIZER] {
        let (bytes, hash) = file_hash(&folder.join(name))?;
        let want = &state["files"][name];
        anyhow::ensure!(
            want["bytes"].as_u64() == Some(bytes) && want["fnv1a"].as_str() == Some(hash.as_str()),
            "checkpoint {} is inconsistent: {name} is not the file its state was written with; refusing to resume from a mixed set",
            folder.display()
        );
    }
    let step = state["step"]
        .as_u64()
        .with_context(|| format!("{} has no step", state_path.display()))?;
    Ok(Some(Published {
        weights: folder.join(WEIGHTS),
        optimizer: folder.join(OPTIMIZER),
        state,
        step,
    }))
}
