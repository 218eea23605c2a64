package main

import (
	"fmt"

	"github.com/lifeboat/lifeboat/node/api"
)

// Client is an admin API client of the agent with the credentials of the
// environment (localCluster.useCredentials sets them).
func (a *localAgent) Client() *api.Client { return envClient(a.URL()) }

// tokenClient is envClient with another bearer token ("": none).
func tokenClient(url, token string) *api.Client {
	c := envClient(url)
	c.Token = token
	return c
}

// envClient is an admin API client of url with the environment's
// credentials, as the CLI would make it.
func envClient(url string) *api.Client {
	c, err := credentialsFromEnv().client(url)
	if err != nil {
		panic(fmt.Sprintf("admin API client of %s: %v", url, err)) // a bad URL or CA file: a bug of the test
	}
	return c
}

// agentNamed is the cluster's agent called name, or nil.
func (lc *localCluster) agentNamed(name string) *localAgent {
	for _, a := range lc.agents {
		if a.Name == name {
			return a
		}
	}
	return nil
}
