//! Sans-IO SMTP codec: the wire part of Net::Cmd.
