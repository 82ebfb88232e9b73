"""The FastAPI app and its request/response APIs: settings, API keys, body limits,
metrics, OpenAI audio, Hugging Face style inference, workflows, speakers, the page."""
