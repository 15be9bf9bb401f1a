//! Refusal codes: why a request was not served, as one byte on the wire.

/// Why a request was refused, as one byte on the wire (docs/PROTOCOL.md §8.2). Codes that
/// mean "later" ([`RefusalCode::is_later`]) leave the requester's view of the responder
/// unchanged; the others mean "not from me": do not ask this peer again for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalCode {
    /// The responder serves as many requests as it may at once (node-wide bound).
    Busy,
    /// The requester has as many requests being served as one peer may.
    TooMany,
    /// The requester has not shown a certificate the responder accepts (charter networks).
    NotAdmitted,
    /// The request (a status) names another network.
    WrongNetwork,
    /// The responder's store failed while answering.
    Unavailable,
    /// The responder failed while answering for another reason.
    Internal,
    /// A request the responder does not expect here (a hello it answers elsewhere).
    Unexpected,
    /// A hello refused: the certificate names an organization that is not a member.
    NotAMember,
    /// A hello refused: the certificate is malformed, for another network or peer, signed by
    /// a key that is not a current key of its organization, or its signature does not verify.
    CertificateInvalid,
    /// A code this build does not know (a newer peer's); treated as "not from me".
    Other(UnassignedCode),
}

/// A refusal code byte that no [`RefusalCode`] variant names; only the decoder makes one, so
/// every `RefusalCode` has exactly one byte and every byte one `RefusalCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnassignedCode(u8);

impl UnassignedCode {
    /// The byte as received.
    pub fn byte(self) -> u8 {
        self.0
    }
}

impl RefusalCode {
    /// Every assigned code, in byte order (byte = index + 1).
    pub const ASSIGNED: [RefusalCode; 9] = [
        RefusalCode::Busy,
        RefusalCode::TooMany,
        RefusalCode::NotAdmitted,
        RefusalCode::WrongNetwork,
        RefusalCode::Unavailable,
        RefusalCode::Internal,
        RefusalCode::Unexpected,
        RefusalCode::NotAMember,
        RefusalCode::CertificateInvalid,
    ];

    /// The code's byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            RefusalCode::Busy => 1,
            RefusalCode::TooMany => 2,
            RefusalCode::NotAdmitted => 3,
            RefusalCode::WrongNetwork => 4,
            RefusalCode::Unavailable => 5,
            RefusalCode::Internal => 6,
            RefusalCode::Unexpected => 7,
            RefusalCode::NotAMember => 8,
            RefusalCode::CertificateInvalid => 9,
            RefusalCode::Other(b) => b.0,
        }
    }

    /// The code a byte on the wire stands for; an unassigned byte is [`RefusalCode::Other`]
    /// (forward compatibility: a newer peer may refuse for a reason this build does not know).
    pub fn from_byte(b: u8) -> RefusalCode {
        match b {
            1..=9 => RefusalCode::ASSIGNED[b as usize - 1],
            _ => RefusalCode::Other(UnassignedCode(b)),
        }
    }

    /// "Ask again later": the responder is under load, nothing is wrong with the request.
    pub fn is_later(self) -> bool {
        matches!(self, RefusalCode::Busy | RefusalCode::TooMany)
    }

    /// A stable machine-readable name (logs, metrics).
    pub fn code(self) -> &'static str {
        match self {
            RefusalCode::Busy => "busy",
            RefusalCode::TooMany => "too_many",
            RefusalCode::NotAdmitted => "not_admitted",
            RefusalCode::WrongNetwork => "wrong_network",
            RefusalCode::Unavailable => "unavailable",
            RefusalCode::Internal => "internal",
            RefusalCode::Unexpected => "unexpected",
            RefusalCode::NotAMember => "not_a_member",
            RefusalCode::CertificateInvalid => "certificate_invalid",
            RefusalCode::Other(_) => "other",
        }
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefusalCode::Other(b) => write!(f, "other ({})", b.0),
            c => f.write_str(c.code()),
        }
    }
}

const _: () = assert!(RefusalCode::ASSIGNED.len() == 9);
