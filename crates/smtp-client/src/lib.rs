//! SMTP client in the manner of Net::SMTP.
