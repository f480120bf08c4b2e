//! The one error type of the line-protocol parser.

use std::fmt;

/// What is wrong with a record. Each variant's message says what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The record has no measurement name (it starts with `,` or a control byte).
    MissingMeasurement,
    /// A `,` after the measurement or a tag is not followed by a tag key.
    MissingTagKey,
    /// A tag key is not followed by `=`.
    MissingTagEquals,
    /// A tag key's `=` is not followed by a value.
    MissingTagValue,
    /// A tag is followed by something other than `,` or whitespace.
    BadTagEnd,
    /// The measurement and tags are not followed by whitespace and a field.
    MissingFields,
    /// A field key is empty.
    MissingFieldKey,
    /// A field key is not followed by `=`.
    MissingFieldEquals,
    /// The value of a field is not a number, boolean or quoted string.
    BadFieldValue,
    /// A field value is followed by something other than `,`, whitespace or a line end.
    BadFieldEnd,
    /// An integer (`i`) value outside the signed 64-bit range.
    IntegerOutOfRange,
    /// An unsigned (`u`) value outside the unsigned 64-bit range.
    UnsignedOutOfRange,
    /// A float too large for a 64-bit float.
    FloatOutOfRange,
    /// A backslash in a string value that escapes neither `\` nor `"`.
    BadStringEscape,
    /// The input ended inside a quoted string.
    UnterminatedString,
    /// What follows the fields is not a timestamp.
    BadTimestamp,
    /// A timestamp outside the signed 64-bit range.
    TimestampOutOfRange,
    /// Something follows the timestamp on the line.
    TrailingCharacters,
    /// A carriage return not followed by a line feed, outside strings and comments.
    BareCarriageReturn,
    /// A backslash escapes a control character or the line end.
    BadEscape,
    /// The record is longer than the configured limit.
    TooLong,
    /// The input was interrupted (a stop signal on a pipe) while the
    /// record was still being read: its end never arrived.
    Incomplete,
}

impl ErrorKind {
    /// The message shown to the operator.
    pub fn message(self) -> &'static str {
        match self {
            ErrorKind::MissingMeasurement => "missing measurement name",
            ErrorKind::MissingTagKey => "expected a tag key after ','",
            ErrorKind::MissingTagEquals => "expected '=' after tag key",
            ErrorKind::MissingTagValue => "expected a tag value after '='",
            ErrorKind::BadTagEnd => "unexpected character after tag value (unescaped '='?)",
            ErrorKind::MissingFields => "no fields (a point needs at least one field)",
            ErrorKind::MissingFieldKey => "expected a field key",
            ErrorKind::MissingFieldEquals => "expected '=' after field key",
            ErrorKind::BadFieldValue => {
                "invalid field value (expected a number, 12i, 12u, true/false or a quoted string)"
            }
            ErrorKind::BadFieldEnd => "unexpected character after field value",
            ErrorKind::IntegerOutOfRange => "integer value out of the 64-bit signed range",
            ErrorKind::UnsignedOutOfRange => "unsigned value out of the 64-bit unsigned range",
            ErrorKind::FloatOutOfRange => "float value out of range",
            ErrorKind::BadStringEscape => r#"backslash in a string must escape '\' or '"'"#,
            ErrorKind::UnterminatedString => "unterminated quoted string",
            ErrorKind::BadTimestamp => "invalid timestamp (expected up to 19 digits)",
            ErrorKind::TimestampOutOfRange => "timestamp out of the 64-bit signed range",
            ErrorKind::TrailingCharacters => "unexpected characters after the timestamp",
            ErrorKind::BareCarriageReturn => "carriage return not followed by a line feed",
            ErrorKind::BadEscape => "backslash before a control character or line end",
            ErrorKind::TooLong => "record longer than --max-line-size",
            ErrorKind::Incomplete => "incomplete record: the input stopped before its end",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A record that cannot be parsed: what is wrong and at which byte of the
/// record (0-based), the byte where Telegraf's parser stops as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Byte offset from the start of the record.
    pub offset: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset + 1)
    }
}

impl std::error::Error for ParseError {}

/// The error as nom carries it: the kind and the input left where it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NomError<'a> {
    pub kind: ErrorKind,
    pub rest: &'a [u8],
}

impl<'a> nom::error::ParseError<&'a [u8]> for NomError<'a> {
    fn from_error_kind(rest: &'a [u8], _: nom::error::ErrorKind) -> Self {
        // A nom combinator failing on its own (`tag`, `take_while1`, ...):
        // where such a failure can end a record, the grammar wraps the
        // combinator in `expect`, which names the kind; elsewhere it only
        // makes an `alt` or `opt` try the next branch.
        NomError {
            kind: ErrorKind::BadFieldValue,
            rest,
        }
    }

    fn append(_: &'a [u8], _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}
