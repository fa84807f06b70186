//! Hookline's domain: the rules of the product, with no I/O.
//!
//! - [`event_type`]: the event-type tree, subscriptions and matching;
//! - [`errors`]: the error-code catalogue and the HTTP status of each code on each API surface;
//! - [`endpoint`]: which endpoint URLs a webhook may have (HTTPS, no private targets);
//! - [`lifecycle`]: delivery statuses, what an attempt makes of a delivery, and the endpoint
//!   health machine;
//! - [`secret`]: webhook signing secrets; [`sealed`]: how they are encrypted at rest;
//!   [`sign`]: the delivery signatures.
//!
//! The API and the worker both apply these rules, so they live here, once.

pub mod brand;
pub mod endpoint;
pub mod envelope;
pub mod errors;
pub mod event_type;
pub mod lifecycle;
pub mod message;
pub mod retry;
pub mod sealed;
pub mod secret;
pub mod sign;

pub use brand::{BrandId, BrandIdError};
pub use endpoint::{is_forbidden_ip, EndpointError, EndpointUrl, UrlPolicy, MAX_ENDPOINT_LEN};
pub use envelope::envelope_json;
pub use errors::ErrorCode;
pub use event_type::{
    matches, normalize, EventType, EventTypeError, Subscription, OPERATIONAL_GROUP,
};
pub use lifecycle::{
    AttemptResult, DeliveryStatus, Health, HealthInput, HealthPolicy, HealthReason, HealthState,
    NextState, Transition,
};
pub use message::DeliveryMessage;
pub use retry::{parse_retry_after, RetrySchedule, ScheduleError};
pub use sealed::{Keyring, KeyringError, OpenError};
pub use secret::{SecretError, WebhookSecret};
