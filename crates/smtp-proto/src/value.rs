//! What every validated string value has: it prints as itself and parses through its
//! validating constructor, so no unchecked value can be made from a string.

/// Implements `Display` (the value as given), `TryFrom<&str>` and `FromStr` (both through
/// `new`, which validates) for a newtype over `String`.
macro_rules! string_value_impls {
    ($ty:ident) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::convert::TryFrom<&str> for $ty {
            type Error = $crate::InvalidInput;
            fn try_from(s: &str) -> Result<$ty, $crate::InvalidInput> {
                $ty::new(s)
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::InvalidInput;
            fn from_str(s: &str) -> Result<$ty, $crate::InvalidInput> {
                $ty::new(s)
            }
        }
    };
}

pub(crate) use string_value_impls;
