//! US dollars as exact decimals: stored as rust_decimal's 16 bytes, shown
//! and accepted as strings, never as floats.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(pub Decimal);

impl Usd {
    pub const ZERO: Usd = Usd(Decimal::ZERO);

    /// A positive amount written as a decimal string (`"0.17"`).
    pub fn parse_positive(s: &str) -> Result<Usd, String> {
        let t = s.trim();
        let plain = t
            .split_once('.')
            .map_or(t, |(w, f)| if f.is_empty() { "" } else { w });
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        let frac_ok = t.split_once('.').is_none_or(|(_, f)| digits(f));
        if !digits(plain) || !frac_ok {
            if t.starts_with('-') {
                return Err(format!("{s:?} must be greater than zero"));
            }
            return Err(format!(
                "{s:?} is not a decimal amount of USD (like \"0.50\")"
            ));
        }
        let d = Decimal::from_str(t)
            .map_err(|_| format!("{s:?} is not a decimal amount of USD (like \"0.50\")"))?;
        if d <= Decimal::ZERO {
            return Err(format!("{s:?} must be greater than zero"));
        }
        Ok(Usd(d.normalize()))
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.normalize().fmt(f)
    }
}

impl serde::Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl bincode::Encode for Usd {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        e: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        self.0.serialize().encode(e)
    }
}

impl<C> bincode::Decode<C> for Usd {
    fn decode<D: bincode::de::Decoder<Context = C>>(
        d: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        Ok(Usd(Decimal::deserialize(<[u8; 16]>::decode(d)?)))
    }
}

impl<'de, C> bincode::BorrowDecode<'de, C> for Usd {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = C>>(
        d: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        Ok(Usd(Decimal::deserialize(<[u8; 16]>::borrow_decode(d)?)))
    }
}

impl std::ops::Add for Usd {
    type Output = Usd;
    fn add(self, o: Usd) -> Usd {
        Usd(self.0 + o.0)
    }
}

impl std::ops::AddAssign for Usd {
    fn add_assign(&mut self, o: Usd) {
        self.0 += o.0;
    }
}

impl std::ops::Sub for Usd {
    type Output = Usd;
    fn sub(self, o: Usd) -> Usd {
        Usd(self.0 - o.0)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn round_trips_exactly() {
        let u = Usd::parse_positive("0.000123456789").unwrap();
        let back: Usd = crate::store::decode(&crate::store::encode(&u)).unwrap();
        assert_eq!(back, u);
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"0.000123456789\"");
        assert!(Usd::parse_positive("0").is_err());
        assert!(Usd::parse_positive("1e3").is_err());
        assert!(Usd::parse_positive("-1").is_err());
    }
}
