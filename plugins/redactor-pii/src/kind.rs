//! The kinds of value the redactor knows, and sets of them.

/// One kind of sensitive value.
///
/// Declaration order is the tie-break when two overlapping matches are
/// equally long: the more specific kind names the merged span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    PrivateKey,
    Jwt,
    AwsAccessKey,
    AnthropicKey,
    OpenaiKey,
    GcpApiKey,
    GithubToken,
    Email,
    Iban,
    CreditCard,
    IpAddress,
    Phone,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::PrivateKey,
        Kind::Jwt,
        Kind::AwsAccessKey,
        Kind::AnthropicKey,
        Kind::OpenaiKey,
        Kind::GcpApiKey,
        Kind::GithubToken,
        Kind::Email,
        Kind::Iban,
        Kind::CreditCard,
        Kind::IpAddress,
        Kind::Phone,
    ];

    /// The config and mask name, e.g. `credit_card`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::PrivateKey => "private_key",
            Kind::Jwt => "jwt",
            Kind::AwsAccessKey => "aws_access_key",
            Kind::AnthropicKey => "anthropic_key",
            Kind::OpenaiKey => "openai_key",
            Kind::GcpApiKey => "gcp_api_key",
            Kind::GithubToken => "github_token",
            Kind::Email => "email",
            Kind::Iban => "iban",
            Kind::CreditCard => "credit_card",
            Kind::IpAddress => "ip_address",
            Kind::Phone => "phone",
        }
    }

    /// The placeholder label, e.g. `CREDIT_CARD`.
    pub fn label(self) -> &'static str {
        match self {
            Kind::PrivateKey => "PRIVATE_KEY",
            Kind::Jwt => "JWT",
            Kind::AwsAccessKey => "AWS_ACCESS_KEY",
            Kind::AnthropicKey => "ANTHROPIC_KEY",
            Kind::OpenaiKey => "OPENAI_KEY",
            Kind::GcpApiKey => "GCP_API_KEY",
            Kind::GithubToken => "GITHUB_TOKEN",
            Kind::Email => "EMAIL",
            Kind::Iban => "IBAN",
            Kind::CreditCard => "CREDIT_CARD",
            Kind::IpAddress => "IP_ADDRESS",
            Kind::Phone => "PHONE",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of kinds (a bit set: checked on every match, so it must be cheap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KindSet(u16);

impl KindSet {
    pub fn all() -> Self {
        Kind::ALL.into_iter().collect()
    }

    pub fn contains(self, kind: Kind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn insert(&mut self, kind: Kind) {
        self.0 |= kind.bit();
    }

    /// Whether any of `kinds` is in the set: lets a scanner be skipped.
    pub fn any_of(self, kinds: &[Kind]) -> bool {
        kinds.iter().any(|&k| self.contains(k))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(move |&k| self.contains(k))
    }
}

impl FromIterator<Kind> for KindSet {
    fn from_iter<I: IntoIterator<Item = Kind>>(iter: I) -> Self {
        let mut set = KindSet::default();
        for k in iter {
            set.insert(k);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_labels_are_upper_case_names() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(k));
            assert_eq!(k.label(), k.name().to_ascii_uppercase());
        }
        assert_eq!(Kind::from_name("EMAIL"), None);
    }

    #[test]
    fn sets() {
        let all = KindSet::all();
        assert_eq!(all.iter().count(), Kind::ALL.len());
        let some: KindSet = [Kind::Phone, Kind::Email].into_iter().collect();
        assert!(some.contains(Kind::Email) && !some.contains(Kind::Jwt));
        assert!(some.any_of(&[Kind::Jwt, Kind::Phone]));
        assert!(!some.any_of(&[Kind::Jwt]));
        assert_eq!(
            some.iter().collect::<Vec<_>>(),
            vec![Kind::Email, Kind::Phone]
        );
        assert!(KindSet::default().is_empty());
    }
}
