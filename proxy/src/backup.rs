//! `sluice backup DEST` / `sluice restore SRC`: the redb files of a data
//! dir, copied consistently while the proxy runs, with a manifest naming
//! each file's schema and sha256 so a restore refuses what this build
//! cannot read.
//!
//! A copy is consistent because it is taken inside an (empty) write
//! transaction: redb has one writer at a time, so nothing changes the file
//! while it is copied, and readers never write. The event writer waits
//! meanwhile; its queue absorbs the pause.

use std::io::Read;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock;
use crate::store::err;

/// The files a backup holds, each with the schema this build reads.
pub const FILES: &[(&str, u64)] = &[
    ("events.redb", crate::events::SCHEMA as u64),
    ("keys.redb", crate::keys::SCHEMA),
];
const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "sluice-backup/1";

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created_at: String,
    pub sluice_version: String,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub schema: u64,
    pub bytes: u64,
    pub sha256: String,
}

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

fn schema_of(db: &Database) -> Result<u64, String> {
    let tx = db.begin_read().map_err(err)?;
    let meta = tx.open_table(META).map_err(err)?;
    Ok(meta.get("schema").map_err(err)?.map_or(0, |v| v.value()))
}

/// Copy each `(name, open database, its file)` into the new directory
/// `dest`.
pub fn backup(dbs: &[(&str, &Database, &Path)], dest: &Path) -> Result<Manifest, String> {
    if dest.exists() {
        return Err(format!(
            "{} already exists; a backup goes into a new directory",
            dest.display()
        ));
    }
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut files = Vec::new();
    for (name, db, path) in dbs {
        let to = dest.join(name);
        let schema = schema_of(db)?;
        let tx = db.begin_write().map_err(err)?;
        let copied = std::fs::copy(path, &to);
        tx.abort().map_err(err)?;
        let bytes = copied.map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
        files.push(FileEntry {
            name: (*name).to_owned(),
            schema,
            bytes,
            sha256: sha256_file(&to)?,
        });
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        created_at: clock::rfc3339(clock::now_ms()),
        sluice_version: env!("CARGO_PKG_VERSION").into(),
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    std::fs::write(dest.join(MANIFEST), text).map_err(|e| format!("cannot write manifest: {e}"))?;
    Ok(manifest)
}

/// Check `src` against this build, then put its files in `data_dir`. The
/// proxy must not run on `data_dir`: the files would be swapped under it.
pub fn restore(src: &Path, data_dir: &Path) -> Result<Manifest, String> {
    let text = std::fs::read(src.join(MANIFEST))
        .map_err(|e| format!("{} is not a sluice backup: {e}", src.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| format!("{}: unreadable manifest: {e}", src.display()))?;
    if manifest.format != FORMAT {
        return Err(format!(
            "backup format {:?}; this sluice restores {FORMAT:?}",
            manifest.format
        ));
    }
    for f in &manifest.files {
        let Some((_, ours)) = FILES.iter().find(|(n, _)| *n == f.name) else {
            return Err(format!("the backup holds an unknown file {:?}", f.name));
        };
        if f.schema != *ours {
            return Err(format!(
                "{} in the backup has schema {}; this sluice reads schema {ours}",
                f.name, f.schema
            ));
        }
        let got = sha256_file(&src.join(&f.name))?;
        if got != f.sha256 {
            return Err(format!(
                "{} does not match its manifest (sha256 {got}, expected {}): the backup is damaged",
                f.name, f.sha256
            ));
        }
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    // Stage every file first so a failure leaves the data dir as it was.
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    for f in &manifest.files {
        let live = data_dir.join(&f.name);
        if live.exists() {
            // Held by a running proxy: refuse rather than swap under it.
            crate::store::open(&live).map_err(|e| {
                if crate::store::is_busy(&e) {
                    format!(
                        "{} is in use: stop the proxy on {} before restoring",
                        live.display(),
                        data_dir.display()
                    )
                } else {
                    e
                }
            })?;
        }
        let tmp = data_dir.join(format!(".{}.restoring", f.name));
        std::fs::copy(src.join(&f.name), &tmp)
            .map_err(|e| format!("cannot copy {}: {e}", f.name))?;
        let db = crate::store::open(&tmp)?;
        let schema = schema_of(&db)?;
        drop(db);
        if schema != f.schema {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!(
                "{} says schema {schema}, its manifest {}",
                f.name, f.schema
            ));
        }
        staged.push((tmp, live));
    }
    for (tmp, live) in staged {
        std::fs::rename(&tmp, &live)
            .map_err(|e| format!("cannot replace {}: {e}", live.display()))?;
    }
    Ok(manifest)
}

fn sha256_file(path: &Path) -> Result<String, String> {
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let (log, _) = crate::events::EventLog::open(&data.join("events.redb")).unwrap();
        let keys = crate::keys::Keys::open(&data.join("keys.redb")).unwrap();
        let dest = dir.path().join("b1");
        let m = backup(
            &[
                ("events.redb", log.db(), &data.join("events.redb")),
                ("keys.redb", keys.db(), &data.join("keys.redb")),
            ],
            &dest,
        )
        .unwrap();
        assert_eq!(m.files.len(), 2);
        // Refuses an existing destination, and a restore under a live file.
        assert!(backup(&[], &dest).unwrap_err().contains("already exists"));
        assert!(
            restore(&dest, &data)
                .unwrap_err()
                .contains("stop the proxy")
        );
        drop((log, keys));
        // The event writer thread closes its handle on the file just after
        // the last sender goes; wait for that rather than race it.
        let started = std::time::Instant::now();
        loop {
            match restore(&dest, &data) {
                Ok(_) => break,
                Err(e) if e.contains("in use") && started.elapsed().as_secs() < 10 => {
                    std::thread::yield_now()
                }
                Err(e) => panic!("{e}"),
            }
        }
        // A damaged file and a foreign schema are refused.
        std::fs::write(dest.join("keys.redb"), b"x").unwrap();
        assert!(restore(&dest, &data).unwrap_err().contains("damaged"));
        let mut man: Manifest =
            serde_json::from_slice(&std::fs::read(dest.join(MANIFEST)).unwrap()).unwrap();
        man.files[0].schema = 99;
        std::fs::write(dest.join(MANIFEST), serde_json::to_vec(&man).unwrap()).unwrap();
        assert!(restore(&dest, &data).unwrap_err().contains("schema 99"));
    }
}
