#!/bin/sh
# Run by the nginx image's entrypoint before nginx starts: serve HTTPS on 8443 when a
# certificate and its key are mounted in /etc/nginx/certs (LOGPIPE_TLS_DIR), else only
# plain HTTP on 8080.
set -eu

certs=/etc/nginx/certs
conf=/etc/nginx/conf.d/logpipe-tls.conf

if [ -f "$certs/tls.crt" ] && [ -f "$certs/tls.key" ]; then
    cat >"$conf" <<EOF
server {
    listen 8443 ssl;
    ssl_certificate $certs/tls.crt;
    ssl_certificate_key $certs/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:logpipe_tls:10m;
    include /etc/nginx/logpipe/collector-proxy.conf;
}
EOF
    echo "logpipe: TLS on :8443 with $certs/tls.crt"
else
    rm -f "$conf"
    echo "logpipe: no tls.crt and tls.key in $certs: plain HTTP on :8080 only"
fi
