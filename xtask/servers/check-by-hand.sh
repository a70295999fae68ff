#!/usr/bin/env bash
# Checks the servers of `cargo xtask servers up` with independent clients (swaks, openssl,
# bash's /dev/tcp), so a failure in our own client can be told from a server set-up fault.
# Optional debug aid, not part of the test command. Needs: swaks (apt-get install swaks
# libauthen-ntlm-perl libauthen-sasl-perl libio-socket-ssl-perl libdigest-hmac-perl
# libio-socket-inet6-perl), base64.
set -uo pipefail
STATE=/var/tmp/smtp-auth-it
CA=$STATE/tls/ca.pem
SINK=$STATE/maildir/sink/new
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# expect CODE DESCRIPTION swaks-args...: the last reply code swaks saw must be CODE.
auth_expect() {
    local code=$1 what=$2
    shift 2
    local out
    out=$(swaks --quit-after AUTH --tls-ca-path "$CA" "$@" 2>&1)
    if grep -qE "^<[-~*]+ +$code " <<<"$out"; then ok "$what -> $code"; else bad "$what (wanted $code)"; echo "$out" | tail -5; fi
}

# listener: name, swaks connection options, mechanisms
declare -a LISTENERS=(
    "dovecot-plain|-s 127.0.0.1 -p 12525|PLAIN LOGIN CRAM-MD5 DIGEST-MD5"
    "dovecot-starttls|-s 127.0.0.1 -p 12587 -tls|PLAIN LOGIN CRAM-MD5 DIGEST-MD5"
    "dovecot-tls|-s 127.0.0.1 -p 12465 -tlsc|PLAIN LOGIN CRAM-MD5 DIGEST-MD5"
    "cyrus-plain|-s 127.0.0.1 -p 12526|PLAIN LOGIN CRAM-MD5 DIGEST-MD5 NTLM"
    "cyrus-starttls|-s 127.0.0.1 -p 12588 -tls|PLAIN LOGIN CRAM-MD5 DIGEST-MD5 NTLM"
    "cyrus-tls|-s 127.0.0.1 -p 12466 -tlsc|PLAIN LOGIN CRAM-MD5 DIGEST-MD5 NTLM"
)
if [ -e $STATE/ipv6-up ]; then
    LISTENERS+=("dovecot-plain-v6|-s ::1 -p 12525|PLAIN LOGIN CRAM-MD5 DIGEST-MD5")
fi

for entry in "${LISTENERS[@]}"; do
    IFS='|' read -r name conn mechs <<<"$entry"
    # shellcheck disable=SC2086
    ehlo=$(swaks $conn --tls-ca-path "$CA" --quit-after EHLO 2>&1 | grep -E '^<[-~]+ +250[- ]AUTH')
    echo "---- $name: ${ehlo#*AUTH }"
    for m in $mechs; do
        # shellcheck disable=SC2086
        auth_expect 235 "$name $m alice" $conn -a "$m" -au alice -ap 'Alice-Secret-1'
        # shellcheck disable=SC2086
        auth_expect 535 "$name $m alice wrong password" $conn -a "$m" -au alice -ap 'Alice-Secret-2'
    done
    for user in "bob|correct horse battery staple" "carol|pässwörd-✓"; do
        # shellcheck disable=SC2086
        auth_expect 235 "$name PLAIN ${user%%|*}" $conn -a PLAIN -au "${user%%|*}" -ap "${user#*|}"
    done
done

# STARTTLS required: no AUTH before TLS, MAIL refused.
out=$(swaks -s 127.0.0.1 -p 12587 --quit-after EHLO 2>&1)
if grep -q 'AUTH' <<<"$out"; then bad "12587 offers AUTH before STARTTLS"; else ok "12587: no AUTH before STARTTLS"; fi
out=$(swaks -s 127.0.0.1 -p 12588 --quit-after EHLO 2>&1)
if grep -q 'AUTH' <<<"$out"; then bad "12588 offers AUTH before STARTTLS"; else ok "12588: no AUTH before STARTTLS"; fi

# Delivery: a unique Message-ID lands in the sink Maildir.
mid="check-$(date +%s%N)@example.test"
swaks -s 127.0.0.1 -p 12525 -a PLAIN -au alice -ap Alice-Secret-1 -f alice@example.test \
    -t someone@example.test --header "Message-ID: <$mid>" >/dev/null 2>&1
found=""
for _ in $(seq 50); do
    found=$(grep -l "$mid" "$SINK"/* 2>/dev/null | head -1)
    [ -n "$found" ] && break
    sleep 0.1
done
if [ -n "$found" ]; then ok "delivered to $found"; else bad "message $mid not delivered"; fi

# One refused recipient among two: 550 for it, the other still delivered.
mid="check-refused-$(date +%s%N)@example.test"
out=$(swaks -s 127.0.0.1 -p 12525 -a PLAIN -au alice -ap Alice-Secret-1 -f alice@example.test \
    -t ok@example.test,refused@example.test --header "Message-ID: <$mid>" 2>&1)
if grep -qE '^<\*\* *550 5.1.1 <refused@example.test>' <<<"$out"; then ok "refused@example.test -> 550"; else bad "refused@ not refused"; echo "$out" | grep -E '^<' ; fi
found=""
for _ in $(seq 50); do
    found=$(grep -l "$mid" "$SINK"/* 2>/dev/null | head -1)
    [ -n "$found" ] && break
    sleep 0.1
done
if [ -n "$found" ] && grep -q '^Delivered-To: ok@example.test' "$found"; then ok "other recipient delivered"; else bad "other recipient not delivered"; fi

# XOAUTH2 on the Dovecot listener: the bearer token is checked against the password.
xoauth() {
    local token=$1
    exec 3<>/dev/tcp/127.0.0.1/12525
    read -r _ <&3
    printf 'EHLO x\r\n' >&3
    while read -r line <&3; do [[ $line == 250\ * ]] && break; done
    printf 'AUTH XOAUTH2 %s\r\n' "$(printf 'user=alice\001auth=Bearer %s\001\001' "$token" | base64 -w0)" >&3
    read -r line <&3
    if [[ $line == 334* ]]; then
        printf '\r\n' >&3
        read -r line <&3
    fi
    printf 'QUIT\r\n' >&3
    exec 3>&-
    echo "${line%$'\r'}"
}
r=$(xoauth Alice-Secret-1)
[[ $r == 235* ]] && ok "XOAUTH2 alice -> $r" || bad "XOAUTH2 alice: $r"
r=$(xoauth wrong-token)
[[ $r == 535* ]] && ok "XOAUTH2 wrong token -> $r" || bad "XOAUTH2 wrong token: $r"

# IMAP: AUTHENTICATE PLAIN (SASL-IR) over plain text, then over STARTTLS with openssl.
imap_plain() {
    local pass=$1
    exec 3<>/dev/tcp/127.0.0.1/12143
    read -r _ <&3
    printf 'a AUTHENTICATE PLAIN %s\r\n' "$(printf '\0alice\0%s' "$pass" | base64 -w0)" >&3
    while read -r line <&3; do [[ $line == a\ * ]] && break; done
    printf 'b LOGOUT\r\n' >&3
    exec 3>&-
    echo "${line%$'\r'}"
}
r=$(imap_plain Alice-Secret-1)
[[ $r == "a OK"* ]] && ok "IMAP AUTHENTICATE PLAIN -> $r" || bad "IMAP AUTHENTICATE PLAIN: $r"
r=$(imap_plain wrong)
[[ $r == "a NO"* ]] && ok "IMAP wrong password -> $r" || bad "IMAP wrong password: $r"
r=$( (printf 'a AUTHENTICATE PLAIN %s\r\n' "$(printf '\0bob\0correct horse battery staple' | base64 -w0)"; sleep 1; printf 'b LOGOUT\r\n'; sleep 0.5) |
    openssl s_client -quiet -connect 127.0.0.1:12143 -starttls imap -CAfile "$CA" -verify_return_error -verify_hostname localhost 2>/dev/null | grep '^a ')
[[ $r == "a OK"* ]] && ok "IMAP STARTTLS + AUTHENTICATE PLAIN bob -> ${r%$'\r'}" || bad "IMAP STARTTLS: $r"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
