#!/usr/bin/env bash
# A throw-away CA and a Redis server certificate for the lab's TLS variant (docs/operations.md,
# "Redis over TLS"), made with openssl on the controller:
#   DIR/ca.crt  ca.key       the lab CA (10 years; ca.key never leaves the controller)
#   DIR/redis.crt redis.key  Redis' certificate, signed by it (2 years); subjectAltName: the
#                            names and addresses given, plus localhost and 127.0.0.1
# An existing CA is kept; an existing server certificate is kept when it names the same hosts,
# so a second run changes nothing (and the next site.yml copies nothing).
#
# Usage: lab/redis-tls-certs.sh [DIR] [NAME_OR_ADDRESS...]
#   default: build/redis-tls and the lab's Redis hosts with their private addresses
#   (`lab/labctl hosts --group redis`: the topology in .config/molecule/config.yml)
# Then, e.g. in a copy of ansible/inventories/lab/group_vars/all.yml:
#   celery_redis_tls: true
#   celery_redis_tls_cert_src: "{{ playbook_dir }}/../build/redis-tls/redis.crt"
#   celery_redis_tls_key_src: "{{ playbook_dir }}/../build/redis-tls/redis.key"
#   celery_redis_tls_ca_src: "{{ playbook_dir }}/../build/redis-tls/ca.crt"
#   celery_common_redis_ca_src: "{{ celery_redis_tls_ca_src }}"
# and every URL rediss://...?ssl_cert_reqs=required&ssl_ca_certs=/etc/celery/redis-ca.crt
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$repo/build/redis-tls}
shift || true
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    # labctl needs PyYAML: the repo's virtualenv (make setup) has it.
    hosts=$("${LAB_PYTHON:-$repo/.venv/bin/python}" "$repo/lab/labctl" hosts --group redis)
    read -r -a names <<<"$(echo $hosts)"
    [ ${#names[@]} -gt 0 ] || { echo "redis-tls-certs: the lab has no host in the redis group" >&2; exit 1; }
fi
names+=(localhost 127.0.0.1)

san=""
for name in "${names[@]}"; do
    if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then entry="IP:$name"; else entry="DNS:$name"; fi
    case ",$san," in *",$entry,"*) ;; *) san="${san:+$san,}$entry" ;; esac
done

mkdir -p "$dir"
chmod 0700 "$dir"
umask 077

if [ ! -s "$dir/ca.key" ] || [ ! -s "$dir/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=celery-kit lab Redis CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
    rm -f "$dir/redis.crt"
    echo "made the CA: $dir/ca.crt"
fi

# The names the current certificate carries, in the order openssl prints them.
current=""
if [ -s "$dir/redis.crt" ] && [ -s "$dir/redis.key" ] \
        && openssl verify -CAfile "$dir/ca.crt" "$dir/redis.crt" >/dev/null 2>&1; then
    current=$(openssl x509 -in "$dir/redis.crt" -noout -ext subjectAltName 2>/dev/null | tail -n +2 \
        | tr -d ' ' | sed 's/IPAddress:/IP:/g')
fi
if [ "$current" != "$san" ]; then
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=${names[0]}" \
        -keyout "$dir/redis.key" -out "$dir/redis.csr" 2>/dev/null
    openssl x509 -req -in "$dir/redis.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 730 -out "$dir/redis.crt" \
        -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san") \
        2>/dev/null
    rm -f "$dir/redis.csr"
    echo "made the Redis certificate for $san: $dir/redis.crt"
else
    echo "kept the Redis certificate for $san: $dir/redis.crt"
fi
# The certificates are public; the keys stay 0600 in a 0700 directory.
chmod 0644 "$dir/ca.crt" "$dir/redis.crt"
