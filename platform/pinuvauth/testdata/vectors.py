#!/usr/bin/env python3
"""Writes vectors.json: known answers for package pinuvauth, computed with
pyca/cryptography rather than Go so that the tests check against a second
implementation. The key pair is RFC 5903 section 8.1's P-256 example, whose
shared x-coordinate (girx) the test also checks.

Run: python3 vectors.py > vectors.json
"""
import hashlib
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

I = "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433"
R = "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53"


def key(hexscalar):
    return ec.derive_private_key(int(hexscalar, 16), ec.SECP256R1())


def cbc(k, iv, pt):
    e = Cipher(algorithms.AES(k), modes.CBC(iv)).encryptor()
    return e.update(pt) + e.finalize()


def mac(k, m):
    h = chmac.HMAC(k, hashes.SHA256())
    h.update(m)
    return h.finalize()


def hkdf(z, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes(32), info=info).derive(z)


ki, kr = key(I), key(R)
pr = kr.public_key().public_numbers()
z = ki.exchange(ec.ECDH(), kr.public_key())
plaintext = bytes(range(32))
message = b"pinUvAuthParam message"
token = bytes(range(0x40, 0x60))
iv = bytes(range(0xA0, 0xB0))

s1 = hashlib.sha256(z).digest()
hmac_key, aes_key = hkdf(z, b"CTAP2 HMAC key"), hkdf(z, b"CTAP2 AES key")
s2 = hmac_key + aes_key

out = {
    "source": "RFC 5903 section 8.1 key pair; values from pyca/cryptography (testdata/vectors.py)",
    "authenticatorPrivate": I,
    "platformX": "%064x" % pr.x,
    "platformY": "%064x" % pr.y,
    "z": z.hex(),
    "plaintext": plaintext.hex(),
    "message": message.hex(),
    "token": token.hex(),
    "protocols": [
        {
            "protocol": 1,
            "sharedSecret": s1.hex(),
            "ciphertext": cbc(s1, bytes(16), plaintext).hex(),
            "mac": mac(s1, message)[:16].hex(),
            "tokenMac": mac(token, message)[:16].hex(),
        },
        {
            "protocol": 2,
            "sharedSecret": s2.hex(),
            "ciphertext": (iv + cbc(aes_key, iv, plaintext)).hex(),
            "mac": mac(hmac_key, message).hex(),
            "tokenMac": mac(token, message).hex(),
        },
    ],
    "pinHash1234": hashlib.sha256(b"1234").digest()[:16].hex(),
}
print(json.dumps(out, indent=2))
