//! A national tariff file: CSV of national lines and their descriptions.
//!
//! The first column is the line (8 or 10 digits; dots and spaces are ignored, so `8806.21.00`
//! reads as `88062100`), the second, optional, its description. A first row whose first cell
//! is not a code is a header. Blank rows are skipped; anything else wrong is an error naming the
//! row, and nothing is classified.

/// Largest tariff file read, in bytes.
pub const TARIFF_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Most lines in one tariff.
pub const TARIFF_LINES_MAX: usize = 100_000;
/// Longest description kept, in characters.
const DESCRIPTION_CHARS_MAX: usize = 1024;

/// One national line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffLine {
    /// 8 or 10 digits.
    pub code: String,
    pub description: String,
}

/// Why a tariff file cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TariffError {
    #[error("the tariff file is {0} bytes; at most {TARIFF_BYTES_MAX}")]
    TooLarge(usize),
    #[error("the tariff file has more than {TARIFF_LINES_MAX} lines")]
    TooManyLines,
    #[error("row {row}: {reason}")]
    Row { row: usize, reason: String },
    #[error("the tariff file has no national line")]
    Empty,
}

fn code_of(cell: &str) -> Option<String> {
    let digits: String = cell.chars().filter(|c| !matches!(c, '.' | ' ')).collect();
    let ok = matches!(digits.len(), 8 | 10) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(digits)
}

/// Reads a tariff file.
pub fn parse_tariff(text: &[u8]) -> Result<Vec<TariffLine>, TariffError> {
    if text.len() > TARIFF_BYTES_MAX {
        return Err(TariffError::TooLarge(text.len()));
    }
    let text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text);
    let mut lines = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 1;
        let record = record.map_err(|e| TariffError::Row { row, reason: e.to_string() })?;
        let first = record.get(0).unwrap_or_default().trim();
        if first.is_empty() && record.len() <= 1 {
            continue;
        }
        let Some(code) = code_of(first) else {
            if row == 1 {
                continue; // a header
            }
            return Err(TariffError::Row {
                row,
                reason: format!("'{first}' is not a national line of 8 or 10 digits"),
            });
        };
        if !seen.insert(code.clone()) {
            return Err(TariffError::Row { row, reason: format!("line {code} appears twice") });
        }
        if lines.len() >= TARIFF_LINES_MAX {
            return Err(TariffError::TooManyLines);
        }
        let description = record.get(1).unwrap_or_default().trim().chars().take(DESCRIPTION_CHARS_MAX).collect();
        lines.push(TariffLine { code, description });
    }
    if lines.is_empty() {
        return Err(TariffError::Empty);
    }
    Ok(lines)
}
