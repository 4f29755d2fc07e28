// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// The ERC-721 surface a token gate reads (balanceOf, ownerOf), plus an open mint for tests.
contract TestNft721 {
    mapping(uint256 => address) private owners;
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);

    function ownerOf(uint256 tokenId) external view returns (address) {
        address o = owners[tokenId];
        require(o != address(0), "no such token");
        return o;
    }

    function mint(address to, uint256 tokenId) external {
        require(owners[tokenId] == address(0), "exists");
        owners[tokenId] = to;
        balanceOf[to] += 1;
        emit Transfer(address(0), to, tokenId);
    }

    function transferFrom(address from, address to, uint256 tokenId) external {
        require(owners[tokenId] == from && msg.sender == from, "not owner");
        owners[tokenId] = to;
        balanceOf[from] -= 1;
        balanceOf[to] += 1;
        emit Transfer(from, to, tokenId);
    }
}
