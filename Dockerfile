# tidings: one node per container. docker-compose.yml runs three behind nginx on one Redis.
# Node 22 LTS (Node 20 is past its end of life; the code still runs on it).

# --- build: compile TypeScript with the dev dependencies ---
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
# --ignore-scripts: `prepare` would compile before the sources are here.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY src ./src
RUN npx tsc -p tsconfig.json

# --- deps: production dependencies only ---
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

# --- runtime ---
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    TIDINGS_HTTP_HOST=0.0.0.0 \
    TIDINGS_HTTP_PORT=8009
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
COPY bin ./bin
COPY web ./web
COPY config ./config
# The image's own user, not root; the config directory stays read-only for it.
USER node
EXPOSE 8009
# Ready = this node can deliver cluster-wide (a round trip through Redis), not just "the process is up".
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.TIDINGS_HTTP_PORT||8009)+'/health/ready').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["serve", "--config", "/app/config"]
