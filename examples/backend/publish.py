"""Send a message to a user's open wsauth sessions from a Python backend.

    python3 publish.py http://127.0.0.1:8000 publish.key alice 'your order shipped'

Needs `requests` (pip install requests, or apt-get install python3-requests).
Prints wsauth's answer, `delivered N`: the sessions that took the message.
"""

import sys

import requests


def publish(base_url, key, user, message):
    """POSTs one text message to every session of `user`; returns wsauth's answer."""
    answer = requests.post(
        f"{base_url}/publish",
        params={"user": user},
        data=message.encode("utf-8"),
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.text


if __name__ == "__main__":
    base_url, key_file, user, message = sys.argv[1:5]
    with open(key_file, encoding="utf-8") as f:
        key = f.read().removesuffix("\n")
    print(publish(base_url, key, user, message), end="")
