//! Tests of the key and value layouts in `keys.rs`.
use super::*;
use proptest::prelude::*;

fn org() -> impl Strategy<Value = OrgId> {
    "[A-Z0-9][A-Z0-9-]{0,31}".prop_map(|s| OrgId::new(&s).unwrap())
}

fn id() -> impl Strategy<Value = DocumentId> {
    any::<[u8; 32]>().prop_map(DocumentId)
}

fn code() -> impl Strategy<Value = HsCode> {
    prop_oneof!["[0-9]{2}", "[0-9]{4}", "[0-9]{6}", "[0-9]{8}", "[0-9]{10}"].prop_map(|s| HsCode::parse(&s).unwrap())
}

proptest! {
    #[test]
    fn feed_key_round_trips(o in org(), s in any::<u64>()) {
        prop_assert_eq!(decode_feed_key(&feed_key(&o, Seq(s))), Some((o, Seq(s))));
    }

    #[test]
    fn feed_keys_order_by_org_then_seq(o in org(), a in any::<u64>(), b in any::<u64>()) {
        prop_assert_eq!(feed_key(&o, Seq(a)).cmp(&feed_key(&o, Seq(b))), a.cmp(&b));
    }

    #[test]
    fn one_org_is_never_a_prefix_of_anothers_feed(a in org(), b in org(), s in any::<u64>()) {
        prop_assume!(a != b);
        prop_assert!(!feed_key(&b, Seq(s)).starts_with(&feed_prefix(&a)));
    }

    #[test]
    fn head_value_round_trips(s in 0u64.., i in id(), f in proptest::option::of(1u64..)) {
        let h = HeadValue { seq: Seq(s), id: i, forked_at: f.map(Seq) };
        prop_assert_eq!(HeadValue::decode(&h.encode()), Some(h));
    }

    #[test]
    fn tlog_values_round_trip(cert in proptest::collection::vec(any::<u8>(), 0..300), t in any::<u64>(), size in any::<u64>(), w in any::<[u8; 32]>()) {
        let c = CosignatureValue { cert, timestamp_s: t, signature: [7; 64] };
        prop_assert_eq!(CosignatureValue::decode(&c.encode()), Some(c));
        let v = WitnessedValue { size, root: w, timestamp_s: t };
        prop_assert_eq!(WitnessedValue::decode(&v.encode()), Some(v));
        let org = OrgId::new("WCO").unwrap();
        prop_assert_eq!(decode_cosignature_key(&cosignature_key(&org, size, &w)), Some((org, size, w)));
    }

    #[test]
    fn tlog_node_keys_order_by_level_then_index(l1 in 0u8..64, i1 in any::<u64>(), l2 in 0u8..64, i2 in any::<u64>()) {
        use crate::tlog::merkle::NodeId;
        let org = OrgId::new("FR").unwrap();
        let (a, b) = (NodeId { level: l1, index: i1 }, NodeId { level: l2, index: i2 });
        prop_assert_eq!(tlog_node_key(&org, a).cmp(&tlog_node_key(&org, b)), a.cmp(&b));
    }

    #[test]
    fn an_empty_frozen_head_round_trips(f in 1u64..) {
        let h = HeadValue::empty(Seq(f));
        prop_assert!(h.holds_nothing());
        prop_assert_eq!(HeadValue::decode(&h.encode()), Some(h));
    }

    #[test]
    fn resolution_keys_and_values_round_trip(o in org(), s in any::<u64>(), v in any::<u32>()) {
        prop_assert_eq!(decode_feed_key(&resolution_key(&o, Seq(s))), Some((o, Seq(s))));
        prop_assert_eq!(decode_resolution_value(&resolution_value(v)), Some(v));
    }

    #[test]
    fn a_positions_fork_keys_sort_together_and_before_the_next_position(o in org(), s in 0u64..u64::MAX, a in id(), b in id()) {
        prop_assert!(fork_key(&o, Seq(s), &a).starts_with(&feed_key(&o, Seq(s))));
        prop_assert!(fork_key(&o, Seq(s), &a) < feed_key(&o, Seq(s + 1)));
        prop_assert!(!fork_key(&o, Seq(s + 1), &b).starts_with(&feed_key(&o, Seq(s))));
    }

    #[test]
    fn fork_key_round_trips(o in org(), s in any::<u64>(), i in id()) {
        prop_assert_eq!(decode_fork_key(&fork_key(&o, Seq(s), &i)), Some((o, Seq(s), i)));
    }

    #[test]
    fn time_keys_order_by_time(a in any::<i64>(), b in any::<i64>(), i in id()) {
        prop_assert_eq!(time_key(a, &i).cmp(&time_key(b, &i)), a.cmp(&b));
        prop_assert_eq!(decode_time_key(&time_key(a, &i)), Some((a, i)));
    }

    #[test]
    fn hs_key_round_trips_and_matches_its_prefixes(y in 1988u16..=2100, c in code(), i in id()) {
        let e = Edition::from_year(y).unwrap();
        let k = hs_key(e, &c, &i);
        prop_assert_eq!(decode_hs_key(&k), Some((e, c.clone(), i)));
        for len in [2, 4, 6] {
            if c.as_str().len() >= len {
                prop_assert!(k.starts_with(&hs_prefix(e, &c.as_str()[..len])));
            }
        }
    }

    #[test]
    fn hs_keys_of_other_editions_never_match(y in 1988u16..2100, c in code(), i in id()) {
        let a = Edition::from_year(y).unwrap();
        let b = Edition::from_year(y + 1).unwrap();
        prop_assert!(!hs_key(b, &c, &i).starts_with(&hs_prefix(a, c.as_str())));
    }

    #[test]
    fn from_keys_order_by_date(a in any::<i32>(), b in any::<i32>(), i in id(), to in proptest::option::of(any::<i32>())) {
        prop_assert_eq!(from_key(a, &i).cmp(&from_key(b, &i)), a.cmp(&b));
        prop_assert_eq!(decode_from_key(&from_key(a, &i)), Some((a, i)));
        prop_assert_eq!(decode_from_value(&from_value(to)), Some(to));
    }

    #[test]
    fn refs_key_round_trips(t in id(), s in id(), k in 1u8..=4) {
        let kind = RefKind::from_byte(k).unwrap();
        prop_assert_eq!(decode_refs_key(&refs_key(&t, kind, &s)), Some((t, kind, s)));
    }

    #[test]
    fn payload_key_round_trips(i in id()) {
        prop_assert_eq!(decode_payload_key(&payload_key(&i)), Some(i));
    }

    #[test]
    fn type_key_round_trips(t in any::<i64>(), i in id()) {
        let ty = TypeName::new("enforcement.notice").unwrap();
        prop_assert_eq!(decode_type_key(&type_prefix(&ty), &type_key(&ty, t, &i)), Some((t, i)));
        let other = TypeName::new("enforcement.notices").unwrap();
        prop_assert_eq!(decode_type_key(&type_prefix(&ty), &type_key(&other, t, &i)), None);
    }

    #[test]
    fn type_keys_group_by_type_then_time(a in any::<i64>(), b in any::<i64>(), i in id()) {
        let t = TypeName::new("hs.amendment").unwrap();
        let k = type_key(&t, a, &i);
        prop_assert!(k.starts_with(&type_prefix(&t)));
        prop_assert_eq!(k.cmp(&type_key(&t, b, &i)), a.cmp(&b));
        let other = TypeName::new("hs.amendments").unwrap();
        prop_assert!(!type_key(&other, a, &i).starts_with(&type_prefix(&t)));
    }
}
