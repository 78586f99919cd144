//! The deterministic keys of a scenario: log key, registrar (trust-root authority) key and
//! one signer key per emitting role, all derived from the data set and the seed.
//!
//! These are synthetic test keys: anyone with the seed can rebuild them. Never use them
//! for a real ledger.

use crate::config::Dataset;
use stockpile_core::events::Role;
use stockpile_core::hash::Hash32;
use stockpile_core::keys::SignerKey;
use stockpile_ledger::trust::TrustRoot;

/// Domain tag of the key-seed derivation, so these seeds can never collide with any other
/// use of the scenario seed.
const KEY_SEED_TAG: &[u8] = b"stockpile-scenario/v1/key-seed\n";

/// Every key a scenario uses.
#[derive(Debug, Clone)]
pub struct ScenarioKeys {
    pub origin: String,
    /// Signs checkpoints; its name is the origin.
    pub log: SignerKey,
    /// The trust-root authority: acts as registrar and authorises every other signer.
    pub registrar: SignerKey,
    pub depot: SignerKey,
    pub demil: SignerKey,
    pub certifier: SignerKey,
    pub export_control: SignerKey,
    pub inspector: SignerKey,
    /// Never authorised: signs the hostile submission the sequencer must refuse as
    /// `signature.unknown_key`.
    pub rogue: SignerKey,
}

impl ScenarioKeys {
    pub fn new(dataset: Dataset, seed: u64) -> ScenarioKeys {
        let prefix = dataset.code().to_ascii_lowercase();
        let derive = |name: &str| -> SignerKey {
            let digest =
                Hash32::digest_parts(&[KEY_SEED_TAG, name.as_bytes(), b"\n", &seed.to_be_bytes()]);
            SignerKey::from_seed(name, digest.0).expect("scenario key names are valid key names")
        };
        let role = |role: &str| derive(&format!("{prefix}.{role}"));
        ScenarioKeys {
            origin: dataset.origin().to_string(),
            log: derive(dataset.origin()),
            registrar: role("registrar"),
            depot: role("depot"),
            demil: role("demil"),
            certifier: role("certifier"),
            export_control: role("export-control"),
            inspector: role("inspector"),
            rogue: role("rogue-depot"),
        }
    }

    /// The key that signs events of `role`.
    pub fn for_role(&self, role: Role) -> &SignerKey {
        match role {
            Role::Registrar => &self.registrar,
            Role::Depot => &self.depot,
            Role::Demil => &self.demil,
            Role::Certifier => &self.certifier,
            Role::ExportControl => &self.export_control,
            Role::Inspector => &self.inspector,
        }
    }

    /// The public key of an authorised key (trust root or `SignerAuthorized`) by key id;
    /// `None` for the rogue key and any other name.
    pub fn authorised_public_key(&self, key_id: &str) -> Option<[u8; 32]> {
        [
            &self.registrar,
            &self.depot,
            &self.demil,
            &self.certifier,
            &self.export_control,
            &self.inspector,
        ]
        .into_iter()
        .find(|key| key.name() == key_id)
        .map(|key| key.public_key_bytes())
    }

    /// The trust root an inspector holds for this ledger.
    pub fn trust_root(&self) -> TrustRoot {
        TrustRoot {
            origin: self.origin.clone(),
            log_keys: vec![self.log.verifier_key()],
            authority_keys: vec![self.registrar.verifier_key()],
        }
    }
}
