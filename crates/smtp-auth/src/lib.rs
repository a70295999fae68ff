//! The SMTP AUTH extension in the manner of Net::SMTP_auth.
