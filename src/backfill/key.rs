//! Keyset cursor values: the key column's value, integer or uuid, as a bound parameter and as the
//! text saved in `pgshift_backfill_runs.cursor`.

use std::error::Error as StdError;

use bytes::BytesMut;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// smallint, integer or bigint (passed as bigint; the comparison stays indexable).
    Int,
    Uuid,
}

impl KeyKind {
    /// From `format_type()` of the key column; `None` for types keyset batching does not support.
    pub fn from_type_name(t: &str) -> Option<KeyKind> {
        match t {
            "smallint" | "integer" | "bigint" => Some(KeyKind::Int),
            "uuid" => Some(KeyKind::Uuid),
            _ => None,
        }
    }

    /// The parameter type the batch statement is prepared with.
    pub fn param_type(self) -> Type {
        match self {
            KeyKind::Int => Type::INT8,
            KeyKind::Uuid => Type::UUID,
        }
    }

    /// The lower bound before the first batch: below every possible key. A row holding exactly
    /// this value would be skipped, so `inspect` refuses tables that have one.
    pub fn start(self) -> Key {
        match self {
            KeyKind::Int => Key::Int(i64::MIN),
            KeyKind::Uuid => Key::Uuid([0; 16]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Int(i64),
    Uuid([u8; 16]),
}

impl Key {
    pub fn parse(kind: KeyKind, s: &str) -> Option<Key> {
        match kind {
            KeyKind::Int => s.trim().parse().ok().map(Key::Int),
            KeyKind::Uuid => {
                let hex: String = s.trim().chars().filter(|c| *c != '-').collect();
                if hex.len() != 32 {
                    return None;
                }
                let mut out = [0u8; 16];
                for (i, byte) in out.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
                }
                Some(Key::Uuid(out))
            }
        }
    }

    /// Read a key from column `idx` of `row` (bigint or uuid).
    pub fn from_row(
        kind: KeyKind,
        row: &tokio_postgres::Row,
        idx: usize,
    ) -> Result<Option<Key>, tokio_postgres::Error> {
        Ok(match kind {
            KeyKind::Int => row.try_get::<_, Option<i64>>(idx)?.map(Key::Int),
            KeyKind::Uuid => row
                .try_get::<_, Option<UuidBytes>>(idx)?
                .map(|u| Key::Uuid(u.0)),
        })
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Int(v) => write!(f, "{v}"),
            Key::Uuid(b) => {
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl ToSql for Key {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Key::Int(v) => v.to_sql(ty, out),
            Key::Uuid(b) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INT8 || *ty == Type::UUID
    }

    to_sql_checked!();
}

/// A uuid read in binary form (we do not need a uuid crate for 16 bytes).
struct UuidBytes([u8; 16]);

impl<'a> FromSql<'a> for UuidBytes {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(UuidBytes(raw.try_into().map_err(|_| "a uuid is 16 bytes")?))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_cursor_text() {
        let u = "0189a3c4-5d6e-7f80-9102-a3b4c5d6e7f8";
        let k = Key::parse(KeyKind::Uuid, u).unwrap();
        assert_eq!(k.to_string(), u);
        assert_eq!(Key::parse(KeyKind::Int, "-42"), Some(Key::Int(-42)));
        assert_eq!(Key::parse(KeyKind::Uuid, "nope"), None);
        assert_eq!(
            KeyKind::Uuid.start().to_string(),
            "00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(KeyKind::from_type_name("numeric"), None);
    }
}
