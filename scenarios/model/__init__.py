"""The sequential model of the PSA key store (docs/properties.md): per-id states and rules, key
use, what injected faults allow, key material across keys, and the reference cryptography."""
