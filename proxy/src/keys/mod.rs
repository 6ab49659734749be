//! The keystore (`keys.redb`): gateway keys by id, the sha256 of each
//! secret and never the secret. Authentication reads an in-memory index
//! published with `ArcSwap`: it never touches the disk and never writes, and
//! a change made through the admin API reaches every worker at once.

pub mod api;
mod types;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use types::{Amount, Caps, CustomerTier, GatewayKey, IssueSpec, KeyStatus, Standing, check_id};

use crate::clock::{self, rfc3339};
use crate::events::EventBody;
use crate::store::{decode, encode, err};

const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Version of the stored `GatewayKey`; bumped with any change to it.
pub const SCHEMA: u64 = 2;

/// Secrets look like `sk-sluice-` and 48 hex digits.
pub const SECRET_PREFIX: &str = "sk-sluice-";
/// Grace period of a rotation unless one is given.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Why a key operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("no key with id {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("keystore: {0}")]
    Store(String),
}

impl KeyError {
    pub fn status(&self) -> u16 {
        match self {
            KeyError::Invalid(_) => 400,
            KeyError::NotFound(_) => 404,
            KeyError::Conflict(_) => 409,
            KeyError::Store(_) => 500,
        }
    }
}

/// Keys by the first bytes of their hash; the full hash is compared in
/// constant time.
#[derive(Default)]
pub struct KeyIndex {
    by_prefix: HashMap<[u8; 8], Vec<Arc<GatewayKey>>>,
    pub active: usize,
    pub revoked: usize,
}

/// Why a presented secret was refused.
pub enum Refusal {
    Invalid,
    Revoked(Arc<GatewayKey>),
    Expired(Arc<GatewayKey>),
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl KeyIndex {
    fn build(keys: Vec<GatewayKey>, now_ms: u64) -> KeyIndex {
        let mut index = KeyIndex::default();
        for k in keys {
            match k.standing(now_ms) {
                Standing::Active | Standing::Grace => index.active += 1,
                Standing::Revoked | Standing::Expired => index.revoked += 1,
            }
            let prefix: [u8; 8] = k.hash[..8].try_into().expect("32 > 8");
            index.by_prefix.entry(prefix).or_default().push(Arc::new(k));
        }
        index
    }

    /// The key a secret belongs to, if it may be used at `now_ms`.
    pub fn authenticate(&self, hash: &[u8; 32], now_ms: u64) -> Result<Arc<GatewayKey>, Refusal> {
        let prefix: [u8; 8] = hash[..8].try_into().expect("32 > 8");
        let key = self
            .by_prefix
            .get(&prefix)
            .and_then(|ks| ks.iter().find(|k| bool::from(k.hash.ct_eq(hash))))
            .ok_or(Refusal::Invalid)?;
        match key.standing(now_ms) {
            Standing::Active | Standing::Grace => Ok(key.clone()),
            Standing::Revoked => Err(Refusal::Revoked(key.clone())),
            Standing::Expired => Err(Refusal::Expired(key.clone())),
        }
    }
}

pub struct Keys {
    db: Database,
    index: ArcSwap<KeyIndex>,
}

/// A new key and its secret, shown once.
pub struct Issued {
    pub key: GatewayKey,
    pub secret: String,
}

impl Keys {
    /// For consistent copies (backup).
    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn open(path: &Path) -> Result<Keys, String> {
        let db = crate::store::open(path)?;
        let tx = db.begin_write().map_err(err)?;
        {
            let keys = tx.open_table(KEYS).map_err(err)?;
            let mut meta = tx.open_table(META).map_err(err)?;
            let found = meta.get("schema").map_err(err)?.map(|v| v.value());
            match found {
                Some(SCHEMA) => {}
                None if keys.is_empty().map_err(err)? => {
                    meta.insert("schema", SCHEMA).map_err(err)?;
                }
                other => {
                    return Err(format!(
                        "{} holds keys of schema {}; this sluice reads schema {SCHEMA} \
                         (it was written by another build)",
                        path.display(),
                        other.map_or("1 (unversioned)".to_owned(), |v| v.to_string())
                    ));
                }
            }
        }
        tx.commit().map_err(err)?;
        let keys = Keys {
            db,
            index: ArcSwap::from_pointee(KeyIndex::default()),
        };
        keys.publish().map_err(|e| e.to_string())?;
        Ok(keys)
    }

    pub fn index(&self) -> arc_swap::Guard<Arc<KeyIndex>> {
        self.index.load()
    }

    /// Rebuild the index from the store and swap it in.
    pub fn publish(&self) -> Result<(), KeyError> {
        let index = KeyIndex::build(self.list()?, clock::now_ms());
        let m = crate::metrics::get();
        m.keys_active.set(index.active as i64);
        m.keys_revoked.set(index.revoked as i64);
        self.index.store(Arc::new(index));
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<GatewayKey>, KeyError> {
        let tx = self.db.begin_read().map_err(store)?;
        let t = tx.open_table(KEYS).map_err(store)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(store)? {
            let (_, v) = row.map_err(store)?;
            out.push(decode(v.value()).map_err(KeyError::Store)?);
        }
        out.sort_by(|a: &GatewayKey, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }

    pub fn get(&self, id: &str) -> Result<GatewayKey, KeyError> {
        let tx = self.db.begin_read().map_err(store)?;
        let t = tx.open_table(KEYS).map_err(store)?;
        let v = t
            .get(id)
            .map_err(store)?
            .ok_or_else(|| KeyError::NotFound(id.to_owned()))?;
        decode(v.value()).map_err(KeyError::Store)
    }

    fn put(&self, keys: &[&GatewayKey]) -> Result<(), KeyError> {
        let tx = self.db.begin_write().map_err(store)?;
        {
            let mut t = tx.open_table(KEYS).map_err(store)?;
            for k in keys {
                t.insert(k.id.as_str(), encode(*k).as_slice())
                    .map_err(store)?;
            }
        }
        tx.commit().map_err(store)?;
        self.publish()
    }

    pub fn issue(&self, spec: &IssueSpec) -> Result<(Issued, Vec<EventBody>), KeyError> {
        let now = clock::now_ms();
        let mut key = from_spec(spec, now).map_err(KeyError::Invalid)?;
        let secret = new_secret();
        key.hash = hash_secret(&secret);
        self.put(&[&key])?;
        let ev = issued_event(&key);
        Ok((Issued { key, secret }, vec![ev]))
    }

    /// A successor with the same metadata; the old key stays valid for
    /// `grace`, then is refused.
    pub fn rotate(&self, id: &str, grace: Duration) -> Result<(Issued, Vec<EventBody>), KeyError> {
        let now = clock::now_ms();
        let mut old = self.get(id)?;
        match old.standing(now) {
            Standing::Revoked => {
                return Err(KeyError::Conflict(format!(
                    "key {id} is revoked; a revoked key cannot be rotated"
                )));
            }
            Standing::Expired => {
                return Err(KeyError::Conflict(format!(
                    "key {id} has expired; issue a new key instead"
                )));
            }
            Standing::Grace => {
                return Err(KeyError::Conflict(format!(
                    "key {id} was already rotated to {}",
                    old.rotated_to.as_deref().unwrap_or("?")
                )));
            }
            Standing::Active => {}
        }
        let secret = new_secret();
        let new = GatewayKey {
            id: new_id(),
            hash: hash_secret(&secret),
            created_ms: now,
            rotated_from: Some(old.id.clone()),
            rotated_to: None,
            grace_period_until_ms: None,
            revoked_ms: None,
            revoked_reason: None,
            ..old.clone()
        };
        let until = now + grace.as_millis() as u64;
        old.grace_period_until_ms = Some(until);
        old.rotated_to = Some(new.id.clone());
        self.put(&[&old, &new])?;
        let events = vec![
            issued_event(&new),
            EventBody::KeyRotated {
                key_id: old.id.clone(),
                new_key_id: new.id.clone(),
                grace_period_until: rfc3339(until),
            },
        ];
        Ok((Issued { key: new, secret }, events))
    }

    pub fn revoke(&self, id: &str) -> Result<(GatewayKey, Vec<EventBody>), KeyError> {
        let mut key = self.get(id)?;
        if key.status == KeyStatus::Revoked {
            // Idempotent: revoking twice changes nothing and says so.
            return Ok((key, Vec::new()));
        }
        key.status = KeyStatus::Revoked;
        key.revoked_ms = Some(clock::now_ms());
        key.revoked_reason = Some("admin_revoke".into());
        self.put(&[&key])?;
        let ev = EventBody::KeyRevoked {
            key_id: key.id.clone(),
            reason: "admin_revoke".into(),
        };
        Ok((key, vec![ev]))
    }

    /// Mark rotated keys whose grace period ended as revoked. Idempotent:
    /// a second sweep finds nothing.
    pub fn sweep(&self) -> Result<(Vec<GatewayKey>, Vec<EventBody>), KeyError> {
        let now = clock::now_ms();
        let mut swept: Vec<GatewayKey> = self
            .list()?
            .into_iter()
            .filter(|k| {
                k.status == KeyStatus::Active && k.grace_period_until_ms.is_some_and(|g| g <= now)
            })
            .collect();
        for k in &mut swept {
            k.status = KeyStatus::Revoked;
            k.revoked_ms = k.grace_period_until_ms;
            k.revoked_reason = Some("grace_period_expired".into());
        }
        if !swept.is_empty() {
            self.put(&swept.iter().collect::<Vec<_>>())?;
        }
        let events = swept
            .iter()
            .map(|k| EventBody::KeyRevoked {
                key_id: k.id.clone(),
                reason: "grace_period_expired".into(),
            })
            .collect();
        Ok((swept, events))
    }
}

fn store(e: impl std::fmt::Display) -> KeyError {
    KeyError::Store(e.to_string())
}

fn issued_event(k: &GatewayKey) -> EventBody {
    EventBody::KeyIssued {
        key_id: k.id.clone(),
        user_id: k.user_id.clone(),
        team_id: k.team_id.clone(),
        workspace: k.workspace.clone(),
        customer_tier: k.customer_tier.map(|t| t.as_str().to_owned()),
        rotated_from: k.rotated_from.clone(),
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    hex::encode(buf)
}

fn new_secret() -> String {
    format!("{SECRET_PREFIX}{}", random_hex(24))
}

fn new_id() -> String {
    format!("key_{}", random_hex(8))
}

fn from_spec(s: &IssueSpec, now: u64) -> Result<GatewayKey, String> {
    if let Some(u) = &s.user_id {
        check_id("user_id", u, false)?;
    }
    if let Some(t) = &s.team_id {
        check_id("team_id", t, true)?;
    }
    if let Some(w) = &s.workspace {
        check_id("workspace", w, false)?;
    }
    let customer_tier = s
        .customer_tier
        .as_deref()
        .map(CustomerTier::parse)
        .transpose()?;
    let expires_ms = match &s.expires_in {
        Some(d) => Some(now + clock::parse_duration(d)?.as_millis() as u64),
        None => None,
    };
    let usd = |a: &Option<Amount>, what: &str| {
        a.as_ref()
            .map(|a| a.usd().map_err(|e| format!("{what}: {e}")))
            .transpose()
    };
    let positive = |n: Option<u64>, what: &str| match n {
        Some(0) => Err(format!("{what} must be greater than zero")),
        n => Ok(n),
    };
    for m in &s.allowed_models {
        if m.is_empty() || m.len() > 256 || m.chars().any(char::is_control) {
            return Err(format!(
                "allowed model {m:?} must be 1-256 printable characters"
            ));
        }
    }
    let id = new_id();
    Ok(GatewayKey {
        budget_id: id.clone(),
        id,
        hash: [0; 32],
        user_id: s.user_id.clone(),
        team_id: s.team_id.clone(),
        workspace: s.workspace.clone(),
        customer_tier,
        status: KeyStatus::Active,
        created_ms: now,
        expires_ms,
        revoked_ms: None,
        revoked_reason: None,
        grace_period_until_ms: None,
        rotated_from: None,
        rotated_to: None,
        caps: Caps {
            daily_usd: usd(&s.daily_cap_usd, "daily_cap_usd")?,
            monthly_usd: usd(&s.monthly_cap_usd, "monthly_cap_usd")?,
            daily_tokens: positive(s.daily_token_cap, "daily_token_cap")?,
            monthly_tokens: positive(s.monthly_token_cap, "monthly_token_cap")?,
        },
        allowed_models: s.allowed_models.clone(),
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn lifecycle_in_the_store_and_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(&dir.path().join("keys.redb")).unwrap();
        let spec = IssueSpec {
            user_id: Some("alice".into()),
            team_id: Some("ml".into()),
            daily_cap_usd: Some(Amount::Text("0.50".into())),
            ..IssueSpec::default()
        };
        let (a, ev) = keys.issue(&spec).unwrap();
        assert_eq!(ev.len(), 1);
        assert!(a.secret.starts_with(SECRET_PREFIX));
        let now = clock::now_ms();
        let found = keys
            .index()
            .authenticate(&hash_secret(&a.secret), now)
            .ok()
            .unwrap();
        assert_eq!(found.id, a.key.id);
        assert!(matches!(
            keys.index()
                .authenticate(&hash_secret("sk-sluice-nope"), now),
            Err(Refusal::Invalid)
        ));
        let (b, _) = keys.rotate(&a.key.id, Duration::from_secs(60)).unwrap();
        assert_eq!(b.key.user_id.as_deref(), Some("alice"));
        assert_eq!(b.key.caps, a.key.caps);
        assert_eq!(b.key.budget_id, a.key.id, "one budget across a rotation");
        // Both valid during grace; a second rotation of the old one refused.
        assert!(
            keys.index()
                .authenticate(&hash_secret(&a.secret), now)
                .is_ok()
        );
        assert!(
            keys.index()
                .authenticate(&hash_secret(&b.secret), now)
                .is_ok()
        );
        assert!(matches!(
            keys.rotate(&a.key.id, DEFAULT_GRACE),
            Err(KeyError::Conflict(_))
        ));
        // After the grace period the old one is refused, and sweep records it once.
        let later = now + 61_000;
        assert!(matches!(
            keys.index().authenticate(&hash_secret(&a.secret), later),
            Err(Refusal::Revoked(_))
        ));
        keys.revoke(&b.key.id).unwrap();
        assert!(matches!(
            keys.index().authenticate(&hash_secret(&b.secret), now),
            Err(Refusal::Revoked(_))
        ));
        assert!(matches!(
            keys.rotate(&b.key.id, DEFAULT_GRACE),
            Err(KeyError::Conflict(_))
        ));
    }

    #[test]
    fn issue_validates_its_fields() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(&dir.path().join("keys.redb")).unwrap();
        for spec in [
            IssueSpec {
                team_id: Some("ML".into()),
                ..Default::default()
            },
            IssueSpec {
                user_id: Some("a b".into()),
                ..Default::default()
            },
            IssueSpec {
                daily_cap_usd: Some(Amount::Text("0".into())),
                ..Default::default()
            },
            IssueSpec {
                customer_tier: Some("gold".into()),
                ..Default::default()
            },
            IssueSpec {
                expires_in: Some("7y".into()),
                ..Default::default()
            },
        ] {
            assert!(
                matches!(keys.issue(&spec), Err(KeyError::Invalid(_))),
                "{spec:?}"
            );
        }
    }
}
