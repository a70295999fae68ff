//! Helpers shared by the integration tests of several crates: one test body, two drivers.
//!
//! A test is a generic `fn name<C: Driver>()`; [`for_both_drivers!`] makes a `#[test]` of it
//! in module `blocking` (the blocking client) and, when the calling crate's feature `tokio`
//! is on, in module `tokio` (the async client, each call run to completion on a
//! current-thread runtime).
//!
//! - [`client::Driver`]: the client's API, for `smtp-client`'s tests and the client interop
//!   tests.
//! - `auth::Driver` (feature `auth`): the same plus AUTH and STARTTLS, for `smtp-auth`'s
//!   tests and the AUTH interop tests.
//!
//! A crate whose tests use the `tokio` module turns on this crate's feature `tokio` from its
//! own (`tokio = [..., "test-support/tokio"]`); if it does not, the generated `tokio` module
//! names a driver that is not there and the tests do not compile, rather than silently
//! running one driver only.
//!
//! ```
//! use smtp_client::ClientConfig;
//! use test_support::client::Driver;
//! use test_support::for_both_drivers;
//!
//! // `blocking::noop_is_250` and, with feature `tokio`, `tokio::noop_is_250`.
//! for_both_drivers!(noop_is_250);
//!
//! fn noop_is_250<C: Driver>() {
//!     # return;
//!     let mut client = C::connect(ClientConfig::new("127.0.0.1:2525")).unwrap();
//!     assert_eq!(client.noop().unwrap().code().get(), 250);
//! }
//! # fn main() {}
//! ```

#[cfg(feature = "auth")]
pub mod auth;
pub mod client;
pub mod fault_proxy;
#[doc(hidden)]
pub mod session_model;

/// Makes a `#[test]` of each generic test function for each driver: `blocking::name` and
/// (with the calling crate's feature `tokio`) `tokio::name`.
/// `for_both_drivers!(#[ignore = "why"] a, b)` puts the attribute on every generated test.
#[macro_export]
macro_rules! for_both_drivers {
    (#[$meta:meta] $($name:ident),* $(,)?) => {
        mod blocking {
            $( #[test] #[$meta] fn $name() { super::$name::<$crate::client::Blocking>() } )*
        }
        #[cfg(feature = "tokio")]
        mod tokio {
            $( #[test] #[$meta] fn $name() { super::$name::<$crate::client::Tokio>() } )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::for_both_drivers!(#[allow(unused)] $($name),*);
    };
}
