//! The JSON writer of the hot response bodies ([`super::wire::FastJson`]): serde_json's
//! compact output, byte for byte, with strings copied in runs. serde_json looks every byte
//! of every key and string up in its escape table one at a time, which was the largest
//! single cost of writing a user's profile (about 3,000 instructions of a 47,000-instruction
//! request); here a string is checked a word at a time and copied in one piece when no byte
//! needs an escape (5,276 -> 4,169 instructions for a profile, callgrind). Numbers are written by the crates serde_json uses (`itoa`, `zmij`), and every
//! rule is serde_json's: non-finite floats are `null`, bytes are an array of numbers, enum
//! variants are externally tagged, map keys must be strings, numbers (written quoted) or
//! booleans. The tests compare both writers on the same values.

use std::fmt::{self, Display};

use serde::ser::{self, Serialize};

/// Writes `value` as JSON at the end of `out`.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    value.serialize(&mut Writer { out })
}

/// Why a value could not be written (a map key that is not a string, a `Serialize` impl's
/// own error).
#[derive(Debug)]
pub struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

fn key_must_be_a_string() -> Error {
    Error("key must be a string".into())
}

struct Writer<'o> {
    out: &'o mut Vec<u8>,
}

/// serde_json's escapes: `\uXXXX` for control characters but the five with short forms;
/// nothing above them but `"` and `\` (non-ASCII text is written as it is).
fn escape(b: u8) -> Option<&'static [u8]> {
    Some(match b {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        0x08 => b"\\b",
        0x0c => b"\\f",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        0x00..=0x1f => return Some(b"\\u00"),
        _ => return None,
    })
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `w` is below 0x20, a `"` or a `\` (exact: the
/// classic "has a byte less than n" and "has a zero byte" tests).
fn needs_escape(w: u64) -> bool {
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = w ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | quote | backslash) & HIGHS != 0
}

/// `s` as a JSON string.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if clean(bytes) {
        out.extend_from_slice(bytes);
    } else {
        write_escaped(out, bytes);
    }
    out.push(b'"');
}

/// Whether no byte of `bytes` needs an escape, read a word at a time: whole words, then
/// the last word again (overlapping) for the rest; four bytes twice (overlapping) for
/// strings of 4 to 7 bytes, the typical key; bytes one by one below that.
fn clean(bytes: &[u8]) -> bool {
    let n = bytes.len();
    if n >= 8 {
        let mut i = 0;
        while let Some(w) = bytes.get(i..i + 8) {
            if needs_escape(word(w)) {
                return false;
            }
            i += 8;
        }
        return i == n || !needs_escape(word(&bytes[n - 8..]));
    }
    if n >= 4 {
        let half = |b: &[u8]| {
            let mut w = [0u8; 4];
            w.copy_from_slice(b);
            u64::from(u32::from_le_bytes(w))
        };
        // Both halves in one word: the low and high four bytes.
        return !needs_escape(half(&bytes[..4]) | half(&bytes[n - 4..]) << 32);
    }
    bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// The first eight bytes of `b` as a little-endian word.
fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// The contents of a string with at least one byte to escape, as serde_json writes them.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let Some(esc) = escape(b) else {
            continue;
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(esc);
        if esc.len() == 4 {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
}

fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn write_float<F: zmij::Float>(out: &mut Vec<u8>, v: F, finite: bool) {
    if finite {
        out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// An array or object being written; `close` ends it (two brackets for a variant's).
pub struct Compound<'w, 'o> {
    w: &'w mut Writer<'o>,
    first: bool,
    close: &'static [u8],
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if !self.first {
            self.w.out.push(b',');
        }
        self.first = false;
    }

    fn end(self) {
        self.w.out.extend_from_slice(self.close);
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.comma();
        write_str(self.w.out, key);
        self.w.out.push(b':');
        value.serialize(&mut *self.w)
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.comma();
        value.serialize(&mut *self.w)
    }
}

/// The integer methods of a serializer, each calling `$body` with the serializer and the
/// value.
macro_rules! numbers {
    (|$s:ident, $v:ident| $body:expr) => {
        numbers!(@each $s $v $body; serialize_i8 i8, serialize_i16 i16, serialize_i32 i32,
            serialize_i64 i64, serialize_i128 i128, serialize_u8 u8, serialize_u16 u16,
            serialize_u32 u32, serialize_u64 u64, serialize_u128 u128);
    };
    (@each $s:ident $v:ident $body:expr; $($name:ident $t:ty),*) => {
        $(fn $name(self, $v: $t) -> Result<(), Error> {
            let $s = self;
            $body
        })*
    };
}

impl<'w, 'o> Writer<'o> {
    fn open(&'w mut self, open: &[u8], close: &'static [u8]) -> Compound<'w, 'o> {
        self.out.extend_from_slice(open);
        Compound {
            w: self,
            first: true,
            close,
        }
    }

    /// `{"variant":` then an array or object closed with the variant's brace.
    fn open_variant(
        &'w mut self,
        variant: &str,
        open: u8,
        close: &'static [u8],
    ) -> Compound<'w, 'o> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        self.out.push(open);
        Compound {
            w: self,
            first: true,
            close,
        }
    }
}

impl<'w, 'o> ser::Serializer for &'w mut Writer<'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'w, 'o>;
    type SerializeTuple = Compound<'w, 'o>;
    type SerializeTupleStruct = Compound<'w, 'o>;
    type SerializeTupleVariant = Compound<'w, 'o>;
    type SerializeMap = Compound<'w, 'o>;
    type SerializeStruct = Compound<'w, 'o>;
    type SerializeStructVariant = Compound<'w, 'o>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    numbers!(|w, v| {
        write_int(w.out, v);
        Ok(())
    });

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        write_float(self.out, v, v.is_finite());
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        write_float(self.out, v, v.is_finite());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let mut seq = self.open(b"[", b"]");
        for b in v {
            seq.element(b)?;
        }
        seq.end();
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'w, 'o>, Error> {
        Ok(self.open(b"[", b"]"))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Compound<'w, 'o>, Error> {
        Ok(self.open(b"[", b"]"))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'o>, Error> {
        Ok(self.open(b"[", b"]"))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'o>, Error> {
        Ok(self.open_variant(variant, b'[', b"]}"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'w, 'o>, Error> {
        Ok(self.open(b"{", b"}"))
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'w, 'o>, Error> {
        Ok(self.open(b"{", b"}"))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'o>, Error> {
        Ok(self.open_variant(variant, b'{', b"}}"))
    }
}

/// The element-by-element traits of an array: every element goes through
/// [`Compound::element`].
macro_rules! elements {
    ($($tr:ident $method:ident),*) => {$(
        impl ser::$tr for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }

            fn end(self) -> Result<(), Error> {
                Compound::end(self);
                Ok(())
            }
        }
    )*};
}

elements!(
    SerializeSeq serialize_element,
    SerializeTuple serialize_element,
    SerializeTupleStruct serialize_field,
    SerializeTupleVariant serialize_field
);

/// The field-by-field traits of an object.
macro_rules! fields {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.field(key, value)
            }

            fn end(self) -> Result<(), Error> {
                Compound::end(self);
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.comma();
        key.serialize(MapKey { out: self.w.out })
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.w.out.push(b':');
        value.serialize(&mut *self.w)
    }

    fn end(self) -> Result<(), Error> {
        Compound::end(self);
        Ok(())
    }
}

/// A map key: a string as it is, a number or boolean quoted, anything else refused (as
/// serde_json does).
struct MapKey<'o> {
    out: &'o mut Vec<u8>,
}

impl MapKey<'_> {
    fn quoted(self, text: &[u8]) -> Result<(), Error> {
        self.out.push(b'"');
        self.out.extend_from_slice(text);
        self.out.push(b'"');
        Ok(())
    }

    fn int<I: itoa::Integer>(self, v: I) -> Result<(), Error> {
        let mut buf = itoa::Buffer::new();
        let text = buf.format(v).as_bytes();
        self.quoted(text)
    }

    fn float<F: zmij::Float>(self, v: F, finite: bool) -> Result<(), Error> {
        if !finite {
            return Err(Error("float key must be finite (got NaN or +/-inf)".into()));
        }
        let mut buf = zmij::Buffer::new();
        let text = buf.format_finite(v).as_bytes();
        self.quoted(text)
    }
}

/// What a map key cannot be.
macro_rules! refuse_key {
    ($($name:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ret, Error> {
            Err(key_must_be_a_string())
        })*
    };
}

impl<'o> ser::Serializer for MapKey<'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.quoted(if v { b"true" } else { b"false" })
    }

    numbers!(|k, v| k.int(v));

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.float(v, v.is_finite())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.float(v, v.is_finite())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    refuse_key! {
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    fn ours<T: Serialize + ?Sized>(v: &T) -> Result<String, String> {
        let mut out = Vec::new();
        write(&mut out, v).map_err(|e| e.to_string())?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[track_caller]
    fn same<T: Serialize + ?Sized>(v: &T) {
        let theirs = serde_json::to_string(v).map_err(|e| e.to_string());
        assert_eq!(ours(v).is_ok(), theirs.is_ok(), "{theirs:?}");
        if let (Ok(a), Ok(b)) = (ours(v), theirs) {
            assert_eq!(a, b);
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        // Every byte value where an escape may start, at every offset of an 8-byte word.
        for b in 0u8..=0x7f {
            let c = char::from(b);
            for at in 0..17 {
                let s: String = (0..at)
                    .map(|_| 'a')
                    .chain([c])
                    .chain("tail".chars())
                    .collect();
                same(&s);
            }
        }
        for s in [
            "",
            "plain ascii longer than one word",
            "quote\"and\\backslash",
            "\u{7f}\u{80}\u{2028}\u{2029}é😀 non-ASCII as it is",
            "\u{1}\u{1f}\u{0}",
            "ends with a quote\"",
            "\t\n\r\u{8}\u{c}/",
        ] {
            same(s);
            same(&'"');
            same(&'é');
        }
    }

    #[derive(Serialize)]
    enum Kind {
        Unit,
        New(u8),
        Tuple(u8, String),
        Struct { a: i64, b: Option<bool> },
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Profile {
        user_id: u64,
        is_admin: bool,
        name: String,
        labels: Vec<String>,
        none: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        kinds: Vec<Kind>,
        map: BTreeMap<String, i32>,
        ints: BTreeMap<u16, u8>,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        unit: (),
        tuple: (i8, u128, i128),
        #[serde(flatten)]
        extra: BTreeMap<String, serde_json::Value>,
    }

    #[test]
    fn values_of_every_shape_match_serde_json() {
        let p = Profile {
            user_id: u64::MAX,
            is_admin: true,
            name: "Ada \"Countess\" Lovelace\n".into(),
            labels: vec![],
            none: None,
            skipped: None,
            kinds: vec![
                Kind::Unit,
                Kind::New(7),
                Kind::Tuple(1, "x".into()),
                Kind::Struct {
                    a: i64::MIN,
                    b: Some(false),
                },
            ],
            map: [("k\"1".to_string(), -1), ("k2".to_string(), 2)].into(),
            ints: [(1, 2), (300, 4)].into(),
            bytes: vec![0, 1, 255],
            unit: (),
            tuple: (-128, u128::MAX, i128::MIN),
            extra: [(
                "extra".to_string(),
                serde_json::json!({"nested": [1, 2.5, null, "s", {"deep": true}]}),
            )]
            .into(),
        };
        same(&p);
        for f in [
            0.0,
            -0.0,
            1.0,
            0.1,
            1e20,
            1e-7,
            123_456.789,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
        ] {
            same(&f);
            same(&(f as f32));
            let m: BTreeMap<String, f64> = [("f".to_string(), f)].into();
            same(&m);
        }
        same(&[[0u8; 0]; 0]);
        same(&Vec::<u8>::new());
        same(&BTreeMap::<String, u8>::new());
        same(&Some("x"));
        same(&[true, false]);
    }

    #[test]
    fn keys_must_be_strings_numbers_or_booleans() {
        let bools: BTreeMap<bool, u8> = [(true, 1), (false, 0)].into();
        same(&bools);
        let floats: Vec<(f64, u8)> = vec![(1.5, 1)];
        let as_map = |v: &Vec<(f64, u8)>| {
            let mut out = Vec::new();
            let mut w = Writer { out: &mut out };
            let mut m = ser::Serializer::serialize_map(&mut w, None).unwrap();
            for (k, v) in v {
                ser::SerializeMap::serialize_entry(&mut m, k, v)?;
            }
            ser::SerializeMap::end(m)?;
            Ok::<_, Error>(String::from_utf8(out).unwrap())
        };
        assert_eq!(as_map(&floats).unwrap(), r#"{"1.5":1}"#);
        assert!(as_map(&vec![(f64::NAN, 1)]).is_err());
        let seq_keys: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
        same(&seq_keys);
        let unit_keys: BTreeMap<(), u8> = [((), 1)].into();
        same(&unit_keys);
    }
}
