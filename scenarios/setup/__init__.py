"""Before any run: find and check the Mbed TLS source tree, install missing Debian packages with
apt, build the variants."""
