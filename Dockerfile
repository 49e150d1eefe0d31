# latentcast image: the service with the bundled model, CPU only. It runs the API by default;
# `latentcast worker` in the same image encodes jobs from Redis (see docker-compose.yml).
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY client ./client
COPY pyproject.toml README.md ./
COPY models ./models
COPY server ./server
# The CPU wheel index keeps torch from pulling a multi-GB CUDA build.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu ./client .

ENV LATENTCAST_DATA_DIR=/data \
    LATENTCAST_HOST=0.0.0.0
VOLUME /data
EXPOSE 8000
CMD ["latentcast", "serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/data"]
