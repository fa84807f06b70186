//! Event types: the dotted tree of known events, subscriptions to its nodes, and matching.
//!
//! The leaves are the `Events` enum of the flexEngage spec
//! (its `components/schemas/Events`, kept in `openapi/hookline.yaml`) plus
//! `ORDER_EVENTS.OMS.ORDER_PARTIALLY_SHIPPED`, which the FDX spec's `Order_PartiallyShipped`
//! needs a leaf for. The group nodes are every proper dotted prefix of a leaf, so the tree is
//! `ORDER_EVENTS` › `ORDER_EVENTS.OMS` › `ORDER_EVENTS.OMS.ORDER_SHIPPED`, and so on.
//!
//! - An [`EventType`] is a leaf: what an event *is*.
//! - A [`Subscription`] is a leaf or a group: what a webhook *wants*. The flexEngage spec lets a
//!   brand "subscribe to groups of event types without having to list each one out".
//! - A subscription matches an event when it equals the event's type or is one of its ancestors
//!   ([`matches()`]); the store does the same in SQL with
//!   `event_types && ARRAY[...EventType::ancestors_and_self()]`.
//!
//! Parsing is strict (exact case, no surrounding whitespace): these values are stored and
//! compared as text, so two spellings of one node must not both exist.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Every leaf, in the order of the flexEngage `Events` enum, then Hookline's additions.
const LEAVES: &[&str] = &[
    "NOTIFICATION.SMS.RECEIPT",
    "ORDER_EVENTS.OMS.ORDER_CONFIRMED",
    "ORDER_EVENTS.OMS.ORDER_SHIPPED",
    "ORDER_EVENTS.OMS.ORDER_CANCELLED",
    "ORDER_EVENTS.OMS.ORDER_FTC_DELAYED",
    "ORDER_EVENTS.OMS.ORDER_RETURN_RECEIVED",
    "ORDER_EVENTS.OMS.ORDER_RETURN_REQUESTED",
    "ORDER_EVENTS.OMS.ORDER_BACK_ORDERED",
    "ORDER_EVENTS.OMS.ORDER_COMPLETED",
    "ORDER_EVENTS.OMS.ORDER_CREDIT_ISSUED",
    "ORDER_EVENTS.OMS.ORDER_PICKUP_READY",
    "ORDER_EVENTS.OMS.ORDER_PICKUP_COMPLETED",
    "ORDER_EVENTS.OMS.ORDER_PICKUP_REMINDED",
    "ORDER_EVENTS.OMS.ORDER_PICKUP_SHOPPER_ARRIVED",
    "ORDER_EVENTS.OMS.ORDER_PICKUP_SHOPPER_CONFIRMED",
    "ORDER_EVENTS.OMS.ORDER_PICKUP_SHOPPER_IN_TRANSIT",
    "ORDER_EVENTS.OMS.ORDER_PICKUP_DELAYED",
    "ORDER_EVENTS.OMS.ORDER_SHIPMENT_UPDATED",
    "ORDER_EVENTS.OMS.UNKNOWN",
    "ORDER_EVENTS.TRACKING.SHIPMENT_PRE_TRANSIT",
    "ORDER_EVENTS.TRACKING.SHIPMENT_IN_TRANSIT",
    "ORDER_EVENTS.TRACKING.SHIPMENT_OUT_FOR_DELIVERY",
    "ORDER_EVENTS.TRACKING.SHIPMENT_DELIVERED",
    "ORDER_EVENTS.TRACKING.SHIPMENT_AVAILABLE_FOR_PICKUP",
    "ORDER_EVENTS.TRACKING.SHIPMENT_RETURNED_TO_SENDER",
    "ORDER_EVENTS.TRACKING.SHIPMENT_FAILURE",
    "ORDER_EVENTS.TRACKING.UNKNOWN",
    "RECEIPTS",
    // Hookline addition: the FDX spec's `Order_PartiallyShipped` has no flexEngage leaf.
    "ORDER_EVENTS.OMS.ORDER_PARTIALLY_SHIPPED",
    // Hookline's operational events: a webhook's endpoint health changed, or a delivery ran
    // out of attempts. Hookline publishes them; brands subscribe to them like any other.
    "WEBHOOK_EVENTS.DEGRADED",
    "WEBHOOK_EVENTS.DISABLED",
    "WEBHOOK_EVENTS.RECOVERED",
    "WEBHOOK_EVENTS.DELIVERY_EXHAUSTED",
    // A test event a brand sends to one webhook (the portal's "Send a test event", or
    // `POST …/webhooks/{id}/test`): delivered to that webhook only, whatever it subscribes to.
    "WEBHOOK_EVENTS.PING",
];

/// Every group node: each proper dotted prefix of a leaf (a test keeps this in sync).
const GROUPS: &[&str] = &[
    "NOTIFICATION",
    "NOTIFICATION.SMS",
    "ORDER_EVENTS",
    "ORDER_EVENTS.OMS",
    "ORDER_EVENTS.TRACKING",
    "WEBHOOK_EVENTS",
];

/// The group of Hookline's own operational events: producers may not publish into it.
pub const OPERATIONAL_GROUP: &str = "WEBHOOK_EVENTS";

/// The FDX spec's `eventName` values ("Valid Values: Order_Shipped, Order_PartiallyShipped")
/// and the leaves they stand for.
const FDX_ALIASES: &[(&str, &str)] = &[
    ("Order_Shipped", "ORDER_EVENTS.OMS.ORDER_SHIPPED"),
    (
        "Order_PartiallyShipped",
        "ORDER_EVENTS.OMS.ORDER_PARTIALLY_SHIPPED",
    ),
];

/// Suffix that marks a group written as a wildcard (`ORDER_EVENTS.*`); accepted on input only.
const WILDCARD_SUFFIX: &str = ".*";

/// Why a string is not an event type or subscription.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventTypeError {
    #[error("event type is empty")]
    Empty,
    #[error("unknown event type `{0}`")]
    Unknown(String),
    #[error("`{0}` is a group of event types, not a single event type")]
    NotALeaf(String),
}

impl EventTypeError {
    /// The catalogue code for this error: the FDX spec's "Event Name missing" and
    /// "Invalid Event Name".
    pub fn error_code(&self) -> crate::ErrorCode {
        match self {
            Self::Empty => crate::ErrorCode::Whk0001,
            Self::Unknown(_) | Self::NotALeaf(_) => crate::ErrorCode::Whk0002,
        }
    }
}

fn find_leaf(s: &str) -> Option<&'static str> {
    LEAVES.iter().copied().find(|leaf| *leaf == s)
}

fn find_group(s: &str) -> Option<&'static str> {
    GROUPS.iter().copied().find(|group| *group == s)
}

fn find_fdx_alias(s: &str) -> Option<&'static str> {
    FDX_ALIASES
        .iter()
        .find(|(alias, _)| *alias == s)
        .map(|(_, leaf)| *leaf)
}

/// A known leaf of the event-type tree: the type of one event.
///
/// Holds a `&'static str` into the table above, so it is cheap to clone and cannot hold an
/// unknown name. Ordering is lexicographic by name, like the stored text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(&'static str);

impl EventType {
    /// Parses a leaf name or an FDX alias (normalised to its leaf).
    ///
    /// A group name (also written `GROUP.*`) is [`EventTypeError::NotALeaf`]: an event has
    /// exactly one type; only subscriptions may name groups.
    pub fn parse(s: &str) -> Result<EventType, EventTypeError> {
        if s.is_empty() {
            return Err(EventTypeError::Empty);
        }
        if let Some(leaf) = find_leaf(s).or_else(|| find_fdx_alias(s)) {
            return Ok(EventType(leaf));
        }
        let group = s.strip_suffix(WILDCARD_SUFFIX).unwrap_or(s);
        if find_group(group).is_some() {
            return Err(EventTypeError::NotALeaf(group.to_owned()));
        }
        Err(EventTypeError::Unknown(s.to_owned()))
    }

    /// The canonical dotted name (never the FDX alias).
    pub fn as_str(&self) -> &str {
        self.0
    }

    /// Whether this is one of Hookline's own operational events (`WEBHOOK_EVENTS.*`), which
    /// only Hookline publishes.
    pub fn is_operational(&self) -> bool {
        self.0
            .strip_prefix(OPERATIONAL_GROUP)
            .is_some_and(|rest| rest.starts_with('.'))
    }

    /// Every leaf of the tree.
    pub fn all() -> impl Iterator<Item = EventType> {
        LEAVES.iter().copied().map(EventType)
    }

    /// The FDX `eventName` for this leaf, if the FDX spec has one.
    pub fn fdx_name(&self) -> Option<&'static str> {
        FDX_ALIASES
            .iter()
            .find(|(_, leaf)| *leaf == self.0)
            .map(|(alias, _)| *alias)
    }

    /// The leaf for an FDX `eventName` (`Order_Shipped`, `Order_PartiallyShipped`); exact case,
    /// as the FDX spec lists them.
    pub fn from_fdx_name(name: &str) -> Option<EventType> {
        find_fdx_alias(name).map(EventType)
    }

    /// The leaves under `node`, in the tree's order: every leaf of a group (`ORDER_EVENTS.OMS`
    /// gives each `ORDER_EVENTS.OMS.*` leaf), the leaf itself for a leaf. A filter by group
    /// (the event log's `type`) compares stored event types, which are always leaves, to this
    /// list.
    pub fn leaves_under(node: &Subscription) -> Vec<&'static str> {
        LEAVES
            .iter()
            .copied()
            .filter(|leaf| matches(node, &EventType(leaf)))
            .collect()
    }

    /// Every subscription that matches this event, outermost first: for
    /// `ORDER_EVENTS.OMS.ORDER_SHIPPED` that is `ORDER_EVENTS`, `ORDER_EVENTS.OMS` and the leaf.
    ///
    /// The store finds matching webhooks with `event_types && ARRAY[...]` on this list, which
    /// is the same rule as [`matches()`].
    pub fn ancestors_and_self(&self) -> Vec<String> {
        self.0
            .match_indices('.')
            .map(|(dot, _)| &self.0[..dot])
            .chain(std::iter::once(self.0))
            .map(str::to_owned)
            .collect()
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::str::FromStr for EventType {
    type Err = EventTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A node of the tree a webhook subscribes to: a leaf or a group, in canonical form (no `.*`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subscription(&'static str);

impl Subscription {
    /// Parses a leaf, a group, a group written `GROUP.*`, or an FDX alias.
    ///
    /// `GROUP.*` and aliases are normalised (to `GROUP` and to the leaf) so that equal
    /// subscriptions are stored as equal text and the duplicate-webhook check (flexEngage 409)
    /// sees them as equal. `*` alone and `LEAF.*` are refused: there is no root node, and a
    /// leaf has no children.
    pub fn parse(s: &str) -> Result<Subscription, EventTypeError> {
        if s.is_empty() {
            return Err(EventTypeError::Empty);
        }
        if let Some(node) = find_leaf(s)
            .or_else(|| find_group(s))
            .or_else(|| find_fdx_alias(s))
            .or_else(|| s.strip_suffix(WILDCARD_SUFFIX).and_then(find_group))
        {
            return Ok(Subscription(node));
        }
        Err(EventTypeError::Unknown(s.to_owned()))
    }

    /// The canonical dotted name.
    pub fn as_str(&self) -> &str {
        self.0
    }

    /// Every node of the tree: the groups, then the leaves.
    pub fn all() -> impl Iterator<Item = Subscription> {
        GROUPS.iter().chain(LEAVES).copied().map(Subscription)
    }

    /// Whether this names a group rather than a single event type.
    pub fn is_group(&self) -> bool {
        find_group(self.0).is_some()
    }

    /// Whether an event of type `event` is delivered to this subscription.
    pub fn matches(&self, event: &EventType) -> bool {
        matches(self, event)
    }
}

impl From<EventType> for Subscription {
    fn from(event: EventType) -> Self {
        Subscription(event.0)
    }
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::str::FromStr for Subscription {
    type Err = EventTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Subscription {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Subscription {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Whether `subscription` equals `event` or is one of its ancestors (docs/architecture.md).
pub fn matches(subscription: &Subscription, event: &EventType) -> bool {
    match event.0.strip_prefix(subscription.0) {
        Some(rest) => rest.is_empty() || rest.starts_with('.'),
        None => false,
    }
}

/// Deduplicates and sorts subscriptions lexicographically, the form the `webhooks.event_types`
/// column stores so that the unique (brand, endpoint, event types) index detects duplicates.
///
/// A leaf under a subscribed group is kept, not collapsed into the group: what a brand sent is
/// what it gets back, the result does not depend on the tree's shape, and matching is the same
/// either way.
pub fn normalize(mut subs: Vec<Subscription>) -> Vec<Subscription> {
    subs.sort_unstable();
    subs.dedup();
    subs
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn ev(s: &str) -> EventType {
        EventType::parse(s).expect("known leaf")
    }

    fn sub(s: &str) -> Subscription {
        Subscription::parse(s).expect("known node")
    }

    #[test]
    fn every_flexengage_leaf_and_the_partially_shipped_addition_is_known() {
        assert_eq!(EventType::all().count(), 34);
        let operational: Vec<_> = EventType::all().filter(EventType::is_operational).collect();
        assert_eq!(operational.len(), 5, "the WEBHOOK_EVENTS leaves");
        assert!(!ev("RECEIPTS").is_operational());
        assert_eq!(
            ev("ORDER_EVENTS.OMS.ORDER_PARTIALLY_SHIPPED").as_str(),
            "ORDER_EVENTS.OMS.ORDER_PARTIALLY_SHIPPED"
        );
        assert_eq!(ev("RECEIPTS").ancestors_and_self(), vec!["RECEIPTS"]);
        let unique: BTreeSet<_> = EventType::all().collect();
        assert_eq!(unique.len(), LEAVES.len());
    }

    #[test]
    fn groups_are_exactly_the_proper_prefixes_of_leaves() {
        let prefixes: BTreeSet<String> = EventType::all()
            .flat_map(|leaf| {
                let mut all = leaf.ancestors_and_self();
                all.pop();
                all
            })
            .collect();
        let groups: BTreeSet<String> = GROUPS.iter().map(|g| g.to_string()).collect();
        assert_eq!(prefixes, groups);
        for leaf in LEAVES {
            assert!(!groups.contains(*leaf), "{leaf} is both a leaf and a group");
        }
    }

    #[test]
    fn ancestors_and_self_lists_outermost_first() {
        assert_eq!(
            ev("ORDER_EVENTS.OMS.ORDER_SHIPPED").ancestors_and_self(),
            vec![
                "ORDER_EVENTS",
                "ORDER_EVENTS.OMS",
                "ORDER_EVENTS.OMS.ORDER_SHIPPED"
            ]
        );
    }

    #[test]
    fn every_leaf_matches_itself_and_its_ancestors_and_nothing_else() {
        for event in EventType::all() {
            let expected: BTreeSet<String> = event.ancestors_and_self().into_iter().collect();
            for node in Subscription::all() {
                assert_eq!(
                    node.matches(&event),
                    expected.contains(node.as_str()),
                    "subscription {node} vs event {event}"
                );
                assert_eq!(matches(&node, &event), node.matches(&event));
            }
        }
    }

    #[test]
    fn a_group_does_not_match_a_sibling_with_a_common_string_prefix() {
        // `ORDER_EVENTS.OMS.UNKNOWN` is a string prefix of nothing else, but guard the rule:
        // matching is by dotted segment, never by raw string prefix.
        let oms = sub("ORDER_EVENTS.OMS");
        assert!(!oms.matches(&ev("ORDER_EVENTS.TRACKING.UNKNOWN")));
        assert!(!sub("NOTIFICATION.SMS").matches(&ev("RECEIPTS")));
        assert!(!sub("ORDER_EVENTS.OMS.ORDER_PICKUP_READY")
            .matches(&ev("ORDER_EVENTS.OMS.ORDER_PICKUP_COMPLETED")));
    }

    #[test]
    fn is_group_is_true_only_for_group_nodes() {
        for node in Subscription::all() {
            assert_eq!(node.is_group(), GROUPS.contains(&node.as_str()), "{node}");
        }
    }

    #[test]
    fn leaves_under_a_group_are_its_leaves_and_a_leaf_is_its_own() {
        let oms = EventType::leaves_under(&sub("ORDER_EVENTS.OMS"));
        assert_eq!(oms.len(), 19);
        assert!(oms.iter().all(|l| l.starts_with("ORDER_EVENTS.OMS.")));
        assert!(oms.contains(&"ORDER_EVENTS.OMS.ORDER_PARTIALLY_SHIPPED"));
        assert_eq!(EventType::leaves_under(&sub("ORDER_EVENTS")).len(), 27);
        assert_eq!(EventType::leaves_under(&sub("RECEIPTS")), vec!["RECEIPTS"]);
        assert_eq!(
            EventType::leaves_under(&sub("ORDER_EVENTS.OMS.*")),
            oms,
            "a wildcard is its group"
        );
        // Every node has at least one leaf, and each leaf is under exactly its ancestors.
        for node in Subscription::all() {
            let leaves = EventType::leaves_under(&node);
            assert!(!leaves.is_empty(), "{node}");
            for event in EventType::all() {
                assert_eq!(leaves.contains(&event.as_str()), node.matches(&event));
            }
        }
    }

    #[test]
    fn fdx_aliases_parse_to_their_leaves_and_back() {
        assert_eq!(
            ev("Order_Shipped").as_str(),
            "ORDER_EVENTS.OMS.ORDER_SHIPPED"
        );
        assert_eq!(
            ev("Order_PartiallyShipped").as_str(),
            "ORDER_EVENTS.OMS.ORDER_PARTIALLY_SHIPPED"
        );
        assert_eq!(
            sub("Order_Shipped").as_str(),
            "ORDER_EVENTS.OMS.ORDER_SHIPPED"
        );
        assert_eq!(
            EventType::from_fdx_name("Order_Shipped"),
            Some(ev("ORDER_EVENTS.OMS.ORDER_SHIPPED"))
        );
        assert_eq!(
            ev("ORDER_EVENTS.OMS.ORDER_PARTIALLY_SHIPPED").fdx_name(),
            Some("Order_PartiallyShipped")
        );
        assert_eq!(ev("RECEIPTS").fdx_name(), None);
        assert_eq!(EventType::from_fdx_name("order_shipped"), None);
        assert_eq!(
            EventType::from_fdx_name("ORDER_EVENTS.OMS.ORDER_SHIPPED"),
            None
        );
        let with_alias = EventType::all().filter(|e| e.fdx_name().is_some()).count();
        assert_eq!(with_alias, 2);
    }

    #[test]
    fn group_names_are_not_event_types() {
        for group in GROUPS {
            assert_eq!(
                EventType::parse(group),
                Err(EventTypeError::NotALeaf(group.to_string()))
            );
            assert_eq!(
                EventType::parse(&format!("{group}.*")),
                Err(EventTypeError::NotALeaf(group.to_string()))
            );
        }
    }

    #[test]
    fn wildcard_form_of_a_group_normalises_to_the_group() {
        assert_eq!(sub("ORDER_EVENTS.*"), sub("ORDER_EVENTS"));
        assert_eq!(sub("ORDER_EVENTS.OMS.*").as_str(), "ORDER_EVENTS.OMS");
        assert!(sub("NOTIFICATION.*").is_group());
    }

    #[test]
    fn junk_is_refused() {
        for junk in [
            "ORDER_EVENTS.",
            ".OMS",
            "order_events.oms",
            "ORDER_EVENTS.*.*",
            "*",
            ".*",
            "RECEIPTS.*",
            "ORDER_EVENTS.OMS.ORDER_SHIPPED.*",
            "ORDER_EVENTS..OMS",
            "ORDER_EVENTS.OMS.ORDER_SHIPPEDX",
            " ORDER_EVENTS",
            "ORDER_EVENTS ",
            "RECEIPTS\n",
            "ORDER_SHIPPED",
        ] {
            assert_eq!(
                Subscription::parse(junk),
                Err(EventTypeError::Unknown(junk.to_owned())),
                "{junk:?}"
            );
            assert_eq!(
                EventType::parse(junk),
                Err(EventTypeError::Unknown(junk.to_owned())),
                "{junk:?}"
            );
        }
        assert_eq!(Subscription::parse(""), Err(EventTypeError::Empty));
        assert_eq!(EventType::parse(""), Err(EventTypeError::Empty));
    }

    #[test]
    fn error_messages_name_the_value() {
        assert_eq!(
            EventTypeError::Unknown("X".into()).to_string(),
            "unknown event type `X`"
        );
        assert!(EventTypeError::NotALeaf("ORDER_EVENTS".into())
            .to_string()
            .contains("`ORDER_EVENTS` is a group"));
        assert_eq!(
            EventTypeError::Empty.error_code(),
            crate::ErrorCode::Whk0001
        );
        assert_eq!(
            EventTypeError::Unknown("X".into()).error_code(),
            crate::ErrorCode::Whk0002
        );
    }

    #[test]
    fn normalize_dedupes_and_sorts_without_collapsing() {
        let subs = vec![
            sub("ORDER_EVENTS.OMS.ORDER_SHIPPED"),
            sub("RECEIPTS"),
            sub("ORDER_EVENTS.*"),
            sub("Order_Shipped"),
            sub("ORDER_EVENTS"),
        ];
        let names: Vec<String> = normalize(subs).iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names,
            vec!["ORDER_EVENTS", "ORDER_EVENTS.OMS.ORDER_SHIPPED", "RECEIPTS"]
        );
        assert!(normalize(Vec::new()).is_empty());
    }

    #[test]
    fn serde_uses_the_canonical_string_and_parses_on_the_way_in() {
        let e: EventType = serde_json::from_str("\"Order_Shipped\"").expect("alias");
        assert_eq!(
            serde_json::to_string(&e).expect("serialize"),
            "\"ORDER_EVENTS.OMS.ORDER_SHIPPED\""
        );
        let s: Vec<Subscription> =
            serde_json::from_str(r#"["ORDER_EVENTS.*","RECEIPTS"]"#).expect("subs");
        assert_eq!(
            serde_json::to_string(&s).expect("serialize"),
            r#"["ORDER_EVENTS","RECEIPTS"]"#
        );
        let err = serde_json::from_str::<EventType>("\"ORDER_EVENTS\"")
            .expect_err("group is not an event type");
        assert!(err.to_string().contains("is a group"), "{err}");
        assert!(serde_json::from_str::<Subscription>("\"NOPE\"").is_err());
        assert!(serde_json::from_str::<Subscription>("7").is_err());
    }

    #[test]
    fn display_and_from_str_round_trip() {
        for node in Subscription::all() {
            assert_eq!(node.to_string().parse::<Subscription>(), Ok(node.clone()));
        }
        for leaf in EventType::all() {
            assert_eq!(leaf.to_string().parse::<EventType>(), Ok(leaf.clone()));
            assert_eq!(Subscription::from(leaf.clone()).as_str(), leaf.as_str());
        }
    }
}
