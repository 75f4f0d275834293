"""Meta's side, pure: the WhatsApp Cloud API's vocabulary, its webhook protocol (handshake,
signature, payload parser), the rules of its message objects and the one Graph API client.
Nothing here imports the product's models or services."""
