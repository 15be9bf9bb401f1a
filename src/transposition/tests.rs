use super::*;

fn id(n: u8) -> DocumentId {
    DocumentId([n; 32])
}

fn row(from: &str, to: &str) -> BasisRow {
    BasisRow { from: from.into(), to: to.into(), document: id(9) }
}

/// A→B where 010110 goes on, 010120 has new text, 010130 splits, 010140 and 010150 merge into
/// 010140, 010160 moves to 010170, and 010190 is deleted.
fn basis() -> Basis {
    let mut b = Basis::default();
    for c in ["010110", "010120", "010130", "010140", "010150", "010160", "010190"] {
        b.old_codes.insert(c.into(), format!("old {c}"));
    }
    for c in ["010110", "010120", "010131", "010132", "010140", "010170"] {
        b.new_codes.insert(c.into(), format!("new {c}"));
    }
    for (f, t) in [
        ("010110", "010110"),
        ("010120", "010120"),
        ("010130", "010131"),
        ("010130", "010132"),
        ("010140", "010140"),
        ("010150", "010140"),
        ("010160", "010170"),
    ] {
        b.forward.entry(f.into()).or_default().insert(row(f, t));
        b.backward.entry(t.into()).or_default().insert(f.into());
    }
    b.text_amended.insert("010120".into());
    b.amended.entry("010120".into()).or_default().insert(id(1));
    b.amended.entry("010190".into()).or_default().insert(id(2));
    b.inserted.entry("010131".into()).or_default().insert(id(3));
    b
}

fn line(code: &str) -> TariffLine {
    TariffLine { code: code.into(), description: String::new() }
}

#[test]
fn every_kind_of_change_is_told_apart_and_the_national_digits_carried_over() {
    let b = basis();
    let got = |code: &str| classify_line(&b, &line(code));
    assert_eq!(got("01011010").relationship, Relationship::Unchanged);
    assert_eq!(got("01011010").new, ["01011010"]);
    let text = got("01012090");
    assert_eq!((text.relationship, text.amendments.clone()), (Relationship::DescriptionChanged, vec![id(1)]));
    let split = got("01013000");
    assert_eq!(split.relationship, Relationship::Split);
    assert_eq!(split.new, ["01013100", "01013200"]);
    assert!(split.amendments.contains(&id(3)), "the set inserting 0101.31 is behind it");
    assert_eq!(got("01014010").relationship, Relationship::Merged);
    assert_eq!(got("01015010").new, ["01014010"]);
    assert_eq!(got("0101601099").relationship, Relationship::Moved);
    assert_eq!(got("0101601099").new, ["0101701099"]);
    let gone = got("01019000");
    assert_eq!((gone.relationship, gone.new.is_empty()), (Relationship::Deleted, true));
    let all = classify(&b, &[line("01011010"), line("01019000")]);
    assert_eq!(counts(&all)["unchanged"], 1);
    assert_eq!(counts(&all)["deleted"], 1);
}

#[test]
fn drafts_are_one_valid_transposition_per_chapter() {
    let b = basis();
    let results = classify(&b, &[line("01011010"), line("01013000"), line("02011000")]);
    let scope = DraftScope {
        administration: "FR".into(),
        scope: "national_tariff".into(),
        from: Edition::parse("HS2017").unwrap(),
        to: Edition::parse("HS2022").unwrap(),
    };
    let drafts = drafts(&scope, &results).unwrap();
    assert_eq!(drafts.len(), 2);
    let ty = crate::doctype::DocType::by_name("hs.transposition").unwrap();
    for d in &drafts {
        ty.validate(d).unwrap();
        assert_eq!(d["status"], "draft");
    }
    assert_eq!(drafts[0]["lines"][1]["relationship"], "split");
}

#[test]
fn a_tariff_file_is_read_or_refused_with_the_row() {
    let ok = parse_tariff(b"code,description\n8806.21.00,Drones\n\n8806221000,\"Camera drones, light\"\n").unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[1].description, "Camera drones, light");
    assert_eq!(
        parse_tariff(b"88062100\n880621\n").unwrap_err(),
        TariffError::Row { row: 2, reason: "'880621' is not a national line of 8 or 10 digits".into() }
    );
    assert!(matches!(parse_tariff(b"88062100\n88062100\n"), Err(TariffError::Row { row: 2, .. })));
    assert_eq!(parse_tariff(b"code\n"), Err(TariffError::Empty));
}
