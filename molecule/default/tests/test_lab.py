"""What every lab VM must provide, whatever is converged on it."""

import ipaddress

import labtest

testinfra_hosts = ["ansible://all"]


def test_hostname_is_the_inventory_name(host):
    assert host.check_output("hostname") == host.backend.get_hostname()


def test_private_address_is_on_an_interface(host):
    address = labtest.private_address(host)
    network = ipaddress.ip_network(labtest.hostvars(host)["lab_private_network"])
    assert ipaddress.ip_address(address) in network
    assert f"inet {address}/{network.prefixlen}" in host.check_output("ip -4 -o addr show")


def test_lab_names_resolve_to_private_addresses(host):
    names = host.backend.ansible_runner.get_hosts("all")
    assert host.backend.get_hostname() in names
    for name in names:
        assert host.addr(name).ipv4_addresses == [labtest.address_of(host, name)]


def test_ssh_user_is_not_root_and_has_passwordless_sudo(host):
    assert host.user().name != "root"
    assert host.run("sudo -n true").rc == 0


def test_no_boot_unit_failed(host):
    assert host.run("systemctl --failed --no-legend --plain").stdout.strip() == ""


def test_apt_uses_the_plain_http_mirror(host):
    sources = host.file("/etc/apt/sources.list.d/debian.sources").content_string
    assert "URIs: http://deb.debian.org/debian\n" in sources
